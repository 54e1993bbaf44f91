import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { lintSpecText } from './index.ts';

const here = import.meta.dirname;
const brokenDir = path.join(here, 'fixtures/broken');
const validDir = path.join(here, 'fixtures/valid');
const broken = readdirSync(brokenDir)
  .filter((f) => f.endsWith('.yaml'))
  .sort();
const valid = readdirSync(validDir)
  .filter((f) => f.endsWith('.yaml'))
  .sort();

/** `# expect: RQ2010 9:1` lines at the top of a fixture. */
function expectations(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^# expect: (RQ\d{4}) (\d+:\d+)\s*$/.exec(line);
    if (m) out.push(`${m[1]} ${m[2]}`);
    else if (!line.startsWith('#')) break;
  }
  return out.sort();
}

describe('broken spec corpus', () => {
  it('has at least 35 fixtures, each with at least one expectation', () => {
    expect(broken.length).toBeGreaterThanOrEqual(35);
    for (const f of broken) expect(expectations(readFileSync(path.join(brokenDir, f), 'utf8')), f).not.toEqual([]);
  });

  it.each(broken)('%s yields exactly its expected findings', (f) => {
    const text = readFileSync(path.join(brokenDir, f), 'utf8');
    const findings = lintSpecText(text, f);
    const got = findings.map((x) => `${x.code} ${x.line}:${x.col}`).sort();
    expect(got, findings.map((x) => `${x.line}:${x.col} ${x.code} ${x.message}`).join('\n')).toEqual(
      expectations(text),
    );
    for (const x of findings) {
      expect(x.file).toBe(f);
      expect(x.message.length).toBeGreaterThan(10);
    }
  });

  it('covers every lint error code except the ones that need no fixture', async () => {
    const { lintCodes } = await import('../errors/lint-codes.ts');
    const used = new Set(
      broken.flatMap((f) => expectations(readFileSync(path.join(brokenDir, f), 'utf8')).map((e) => e.split(' ')[0])),
    );
    const missing = Object.keys(lintCodes).filter((c) => !used.has(c));
    expect(missing).toEqual([]);
  });
});

describe('valid fixtures', () => {
  it('has the Chatwoot- and Cliniko-like fixtures with the schema modeline', () => {
    expect(valid).toEqual(expect.arrayContaining(['chatwoot.yaml', 'cliniko.yaml']));
    for (const f of valid) {
      expect(readFileSync(path.join(validDir, f), 'utf8').split('\n')[0]).toBe(
        '# yaml-language-server: $schema=../../../../../schemas/connector.schema.json',
      );
    }
  });

  it.each(valid)('%s lints clean (no errors, no warnings)', (f) => {
    expect(lintSpecText(readFileSync(path.join(validDir, f), 'utf8'), f)).toEqual([]);
  });
});

describe('messages', () => {
  const lint = (f: string) => lintSpecText(readFileSync(path.join(brokenDir, f), 'utf8'), f);

  it('suggests the closest key, value, variant, binding, function, setting, stream, hook and field', () => {
    const cases: Array<[string, RegExp]> = [
      ['unknown-top-level-key.yaml', /unknown top-level key "titel"; did you mean "title"\?/],
      ['unknown-stream-key.yaml', /did you mean "pagination"\?/],
      ['unknown-pagination-key.yaml', /unknown key "page_size" in streams\[0\]\.pagination; did you mean "size"\?/],
      ['key-of-other-variant.yaml', /"path" .*belongs to type next_link/],
      ['bad-enum-order.yaml', /"ascending" is not one of asc, desc, none; did you mean asc\?/],
      [
        'bad-pagination-type.yaml',
        /pagination type "next-link" is not one of none, page_number, offset, cursor, next_link, id_window; did you mean next_link\?/,
      ],
      ['unknown-binding.yaml', /unknown binding \$secret; did you mean \$secrets\?/],
      ['unknown-function.yaml', /unknown function \$strng\(\); did you mean \$string\(\)\?/],
      ['config-undeclared.yaml', /did you mean \$config\.base_url\?/],
      ['unknown-parent.yaml', /parent stream "contact" does not exist; did you mean "contacts"\?/],
      ['unknown-identity-hook.yaml', /did you mean "identity\.match"\?/],
      ['unknown-target-field.yaml', /unknown field "phone_number"; did you mean "phone"\?/],
    ];
    for (const [f, re] of cases)
      expect(
        lint(f)
          .map((x) => x.message)
          .join('\n'),
        f,
      ).toMatch(re);
  });

  it('says what type was expected and what was found', () => {
    expect(lint('wrong-type-integer.yaml')[0]?.message).toBe(
      'streams[0].pagination.size must be an integer, got string "50"',
    );
    expect(lint('wrong-type-version-number.yaml')[0]?.message).toMatch(
      /must be a string .*got number 1\.0 \(quote it: "1\.0"\)/,
    );
    expect(lint('wrong-type-streams-mapping.yaml')[0]?.message).toBe('streams must be a list of mappings, got mapping');
  });

  it('gives the path and severity of each finding', () => {
    const [f] = lint('bad-pagination-type.yaml');
    expect(f).toMatchObject({ path: 'streams[0].pagination.type', severity: 'error', code: 'RQ2014' });
    expect(lint('no-incremental.yaml')[0]).toMatchObject({ severity: 'warning', code: 'RQ2070', path: 'streams[0]' });
  });

  it('reports every finding, not just the first', () => {
    expect(lint('many-findings.yaml').map((f) => f.code)).toEqual(['RQ2010', 'RQ2022', 'RQ2013', 'RQ2060']);
  });

  it('checks hooks against the registry it is given', () => {
    const text = readFileSync(path.join(brokenDir, 'unknown-hook.yaml'), 'utf8');
    expect(lintSpecText(text, 'x.yaml', { hooks: [{ name: 'contacts.dedupe', kind: 'after_fetch' }] })).toEqual([]);
    expect(
      lintSpecText(text, 'x.yaml', { hooks: [{ name: 'contacts.dedupe', kind: 'after_map' }] }).map((f) => f.code),
    ).toEqual(['RQ2054']);
  });
});

describe('positions inside strings', () => {
  const spec = (pathValue: string) =>
    [
      'spec_version: 1',
      'name: demo',
      'version: 1.0.0',
      'connection: { properties: {} }',
      'base_url: https://api.example.com',
      'auth: { type: none }',
      'streams:',
      '  - name: items',
      '    request:',
      `      path: ${pathValue}`,
      '    pagination: { type: none }',
      '    incremental: { cursor_field: id, type: integer, order: asc, client_filter: true }',
      '    map:',
      `      - target: practitioners`,
      `        expression: '{ "external_id": $string(id) }'`,
      '',
    ].join('\n');

  it('points into plain, quoted and block scalars', () => {
    // $cursr is at column 23 of line 10 in the plain and quoted forms, column 12 of line 12 in the folded one.
    const plain = lintSpecText(spec('/items/{{ $cursr }}'), 's.yaml');
    expect(plain.map((f) => `${f.code} ${f.line}:${f.col}`)).toEqual(['RQ2022 10:23']);
    const quoted = lintSpecText(spec('"/items{{ $cursr }}"'), 's.yaml');
    expect(quoted.map((f) => `${f.code} ${f.line}:${f.col}`)).toEqual(['RQ2022 10:23']);
    const block = lintSpecText(spec('>-\n        /items\n        {{ $cursr }}'), 's.yaml');
    expect(block.map((f) => `${f.code} ${f.line}:${f.col}`)).toEqual(['RQ2022 12:12']);
  });
});

import { readFileSync } from 'node:fs';
import path from 'node:path';
import jsonata from 'jsonata';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { evaluate } from './expr.ts';
import { FALLBACK, fastExpression } from './fast-expr.ts';

const ROOT = path.resolve(import.meta.dirname, '../../..');

/** Every expression the shipped connectors map with (map[].expression/when/input/version, primary keys, cursors). */
function connectorExpressions(): string[] {
  const out = new Set<string>();
  const walk = (v: unknown) => {
    if (Array.isArray(v)) for (const x of v) walk(x);
    else if (v && typeof v === 'object')
      for (const [k, x] of Object.entries(v)) {
        if (
          ['expression', 'when', 'input', 'version', 'primary_key', 'cursor_field'].includes(k) &&
          typeof x === 'string'
        )
          out.add(x);
        else walk(x);
      }
  };
  for (const c of ['chatwoot', 'cliniko', 'manychat'])
    walk(parse(readFileSync(path.join(ROOT, 'connectors', c, 'connector.yaml'), 'utf8')));
  return [...out];
}

/** Shapes the compiler handles, and edges where it must give up or agree exactly. */
const HAND = [
  'id',
  'a.b.c',
  'constructor',
  'a.toString',
  '$string(n)',
  '$string(f)',
  '$string(s)',
  '$string(b)',
  '$string(z)',
  '$string(o)',
  'n = 1 ? "one" : n = 2 ? "two" : null',
  'n != 1',
  's = o',
  'n > 1',
  's >= "m"',
  'n < s',
  'n * 1000',
  'n / 0',
  'n % 3',
  '-n',
  'n + f - 1',
  's & "-" & n',
  'o & s',
  'b and n',
  'b or s',
  'o and n',
  'arr and n',
  '$not(b)',
  // strings: Chatwoot's contact name split
  '$trim(s)',
  '$trim(n)',
  '$trim(z)',
  '$trim("  a \t\n b  ")',
  '$substringBefore(s, " ")',
  '$substringBefore(s, "")',
  '$substringBefore(z, " ")',
  '$substringBefore(n, "1")',
  '$substringBefore(s, n)',
  '$substringAfter(s, " ")',
  '$substringAfter(s, "zz")',
  '$substringAfter(z, " ")',
  '$substringAfter(s, z)',
  '$contains(s, " ")',
  '$contains(s, "")',
  '$contains(z, " ")',
  '$contains(s, z)',
  '$contains(n, "1")',
  '$contains(s, /a/)',
  's and $contains(s, " ") ? $trim($substringAfter(s, " ")) : null',
  // sequences: $match, mapping paths, $append, flattening array constructors
  '$match(s, /[a-z]+/).match',
  '$match(s, /[A-Z]+/i)',
  '$match(s, /x*/)',
  '$match(content, /(h)(z)?/)',
  '$match(n, /1/)',
  '$match(z, /a/)',
  '( $m := $match(s, /[a-z]+/).match; $append($m.{ "v": $ }, arr) )',
  '( $m := $match(content, /i/).match; $count($m) > 0 ? { "e": [$m] } : [] )',
  '[arr]',
  '[arr, n]',
  '[[1, 2]]',
  '[a.arr]',
  '$append(arr, s)',
  '$append(z, s)',
  '$append(s, n)',
  '$append(o, labels)',
  'attachments.{ "id": id }',
  '[attachments.{ "id": id, "size": file_size }]',
  'a.arr.{ "x": $ }',
  'labels.{ "l": $ }',
  'meta.sender.{ "n": name }',
  'arr{ "v": $ }',
  '$not(arr)',
  '$boolean(o)',
  '$exists(a.b)',
  '$count(arr)',
  '$count(a)',
  '$count(missing)',
  '$type(s)',
  '$type(n)',
  '$type(f)',
  '$type(b)',
  '$type(z)',
  '$type(o)',
  '$type(arr)',
  '$type(a.arr)',
  '$type(missing)',
  '$type(content) = "string"',
  '$lowercase(s)',
  '$uppercase(n)',
  '$replace(s, "::", "-")',
  '$replace(s, "a", "$0$0")',
  '$fromMillis(n * 1000)',
  '$fromMillis(big)',
  '$fromMillis(f)',
  '{ "x": a, "y": missing, "z": arr, "w": { "v": s } }',
  '[{ "k": s }]',
  '[s, n, missing]',
  '[arr]',
  '[]',
  '(n; s)',
  '($x := n * 2; $x + 1)',
  '($x := a; $x.b)',
  '($s := s; ($s := "inner"; $s) & $s)',
  '($f := function($l) { $l ? $split($l, "/")[-1] : null }; [$f(s), $f(missing), $f(n)])',
  '($f := function($l) { $l ? $split($l, "/")[0] : null }; $f(patient.links.self))',
  '($f := function($a, $b) { $a & $b }; $f(s, n))',
  '($f := function($a) { $string($a) }; $f(n))',
  '($f := function($a) { $a }; $f(n, s))',
  '($g := function($n) { $n > 0 ? $g($n - 1) : "done" }; $g(3))',
  '$split(s, ":")',
  '$split(s, ":")[1]',
  '$split(s, ":")[9]',
  '$split(s, "")[-2]',
  '$split(n, "/")[-1]',
  '$string(n)[0]',
  '$',
  '$.s',
  'arr[0]',
  'arr[-1]',
  'arr[5]',
  'arr[$ > 1]',
  'arr[$ > 0]',
  'arr[$ > 1][0]',
  'arr[$ = 1 ? 0 : 1]',
  'o[k = 1]',
  'o[k = 2].k',
  'a.b[c = "deep"].c',
  'a.arr[0]',
  'patient_phone_numbers[phone_type = "Mobile"][0].number',
  'patient_phone_numbers[0].number',
  'patient_phone_numbers[phone_type]',
  '[s, n][$]',
  '[s, z, b][$ and $ != ""]',
  '[first_name, last_name][$ and $ != ""]',
  '$join([first_name, last_name][$ and $ != ""], " ")',
  '$join(arr, ",")',
  '$join(s, "-")',
  '$join(labels, n)',
  '$x',
  '(n = 2 or s = "x") ? "y" : "n"',
  'arr',
  'a.arr',
  's ? s : null',
  'o ? "yes" : "no"',
  'arr ? "yes" : "no"',
  'missing ? 1',
];

const base: Record<string, unknown> = {
  id: 7,
  n: 2,
  f: 1.1,
  s: 'Channel::Whatsapp::x',
  b: true,
  z: null,
  big: 1e16,
  o: { k: 1 },
  arr: [1, 2],
  a: { b: { c: 'deep' }, arr: [[1], [2]] },
  // real records of the simulators' shapes
  conversation_id: 3,
  message_type: 3,
  sender: { id: 9, type: 'agent_bot' },
  content: 'hi',
  content_type: 'text',
  private: false,
  created_at: 1_700_000_000,
  content_attributes: { deleted: true },
  attachments: [{ id: 1, message_id: 2, file_type: 'image', data_url: 'u', extension: 'png', file_size: 3 }],
  meta: { sender: { id: 4, name: 'Ann Lee', email: 'a@b.c' }, channel: 'Channel::Api', assignee: { id: 1 } },
  status: 'open',
  inbox_id: 12,
  last_activity_at: 1_700_000_100,
  labels: ['x'],
  name: 'Ann Lee',
  channel_type: 'Channel::Whatsapp',
  first_name: 'Ann',
  last_name: '',
  patient_phone_numbers: [{ phone_type: 'Mobile', number: '+61 400 000 000' }],
  patient: { links: { self: 'https://x/patients/77' } },
  starts_at: '2024-01-01T00:00:00Z',
  cancelled_at: null,
  did_not_arrive: true,
  updated_at: '2024-01-02T00:00:00Z',
};

const VARIANTS: unknown[] = [
  undefined,
  null,
  '',
  'x y',
  0,
  -1,
  2.5,
  Number.POSITIVE_INFINITY,
  Number.NaN,
  true,
  false,
  [],
  ['a'],
  [[1], [2]],
  [{ id: 1 }],
  {},
  { id: 1, type: 'user', deleted: true },
  'ring 0412 345 678, (02) 9876-5432 or ann@example.com / bo@x.co',
];

/** The base record, and one variant per field the expression names (top level and one down) per value above. */
function* inputs(expr: string): Generator<unknown> {
  yield base;
  yield null;
  yield 'a string';
  yield [base, base];
  for (const k of Object.keys(base)) {
    if (!new RegExp(`\\b${k}\\b`).test(expr)) continue;
    for (const v of VARIANTS) yield { ...base, [k]: v };
    const inner = base[k];
    if (inner && typeof inner === 'object' && !Array.isArray(inner))
      for (const k2 of Object.keys(inner))
        for (const v of [undefined, null, 5, 'x', ['x'], { id: 'n' }]) yield { ...base, [k]: { ...inner, [k2]: v } };
  }
}

async function jsonataResult(expr: string, input: unknown): Promise<{ value?: unknown; error?: string }> {
  try {
    const v = await jsonata(expr).evaluate(input);
    // evaluate() hands back plain arrays (sequences normalized); compare the same way
    const norm = (x: unknown): unknown => (Array.isArray(x) ? x.map(norm) : x);
    return { value: norm(v) };
  } catch (e) {
    return { error: String((e as { code?: string }).code ?? (e as Error).message) };
  }
}

async function ourResult(expr: string, input: unknown): Promise<{ value?: unknown; error?: string }> {
  try {
    return { value: await evaluate(expr, input) };
  } catch (e) {
    return { error: String((e as { code?: string }).code ?? (e as Error).message) };
  }
}

describe('compiled expressions (fast-expr)', () => {
  const corpus = [...connectorExpressions(), ...HAND];

  it('compiles the connectors’ hot mappings (messages, conversations, inboxes) and the plain paths', () => {
    const all = connectorExpressions();
    const messages = all.find((e) => e.includes('"conversation_external_id"'));
    const conversation = all.find((e) => e.includes('"last_activity_at"'));
    const inbox = all.find((e) => e.includes('"channel": $lowercase($replace(channel_type'));
    const appointment = all.find((e) => e.includes('$idOf := function($link)'));
    const patient = all.find((e) => e.includes('$mobile :='));
    const incomingMessage = all.find((e) => e.includes("$type(content) = 'string'"));
    // Chatwoot's phones and emails a contact wrote, and a message's attachments (a JSONata run per message before).
    const evidence = all.find((e) => e.includes('$emails := $match(content'));
    const attachments = all.find((e) => e.includes('[attachments.{'));
    const contact = all.find((e) => e.includes('$substringBefore(name'));
    for (const e of [
      messages,
      incomingMessage,
      evidence,
      attachments,
      conversation,
      inbox,
      appointment,
      patient,
      contact,
      'meta.sender',
      'meta.sender.id',
      '$count(attachments) > 0',
    ])
      expect(fastExpression(e as string), e).not.toBeNull();
    // and takes the compiled path on an ordinary record (no fallback)
    for (const e of [messages, incomingMessage, evidence, attachments, appointment, patient])
      expect(() => fastExpression(e as string)?.(base, {}, {})).not.toThrow();
    const wrote = { ...base, content: 'call me on 0412 345 678 or ann@example.com', sender: { id: 4 } };
    expect(fastExpression(evidence as string)?.(wrote, {}, {})).toEqual({
      external_id: '4',
      evidence: [
        { kind: 'email', value: 'ann@example.com', origin: 'message' },
        { kind: 'phone', value: '0412 345 678', origin: 'message' },
      ],
    });
    // predicates, lambdas and `$` are left to JSONata
    for (const e of [
      '$string(n)[0]',
      '($f := function($x) { $x }; $f)',
      'a.[b]',
      'arr{ "v": $ }',
      '$match(s, "a")',
      'arr^($)',
      'a#$i.b',
    ])
      expect(fastExpression(e), e).toBeNull();
  });

  it('gives exactly JSONata’s result (or error) for every corpus expression on every input', async () => {
    let compared = 0;
    let fast = 0;
    for (const expr of corpus) {
      const f = fastExpression(expr);
      for (const input of inputs(expr)) {
        const want = await jsonataResult(expr, input);
        const got = await ourResult(expr, input);
        expect(got, `${expr} on ${JSON.stringify(input)?.slice(0, 200)}`).toStrictEqual(want);
        compared++;
        if (f) {
          try {
            f(input, {}, {});
            fast++;
          } catch (e) {
            if (e !== FALLBACK) fast++; // an error of its own would have shown above as a mismatch
          }
        }
      }
    }
    // The comparison covers the compiled path, not only the fallback.
    expect(fast).toBeGreaterThan(compared / 4);
  });

  it('reads the evaluation’s bindings as JSONata does (request headers and URLs: $secrets, $parent, $config)', async () => {
    const exprs = [
      '$secrets.api_token',
      '$parent.id',
      '$parent',
      '$cursor',
      '$missing',
      '$parent.items.id',
      '$config.base_url & "/api/v1/accounts/" & $string($config.account_id)',
      '"Bearer " & $secrets.api_token',
      '($secrets := { "api_token": "shadow" }; $secrets.api_token)',
      '$string',
    ];
    for (const e of exprs.slice(0, 8)) expect(fastExpression(e), e).not.toBeNull();
    const bindingSets: Record<string, unknown>[] = [
      {
        secrets: { api_token: 'tok' },
        parent: { id: 5, items: [{ id: 1 }, { id: 2 }] },
        config: { base_url: 'https://x', account_id: 3 },
        cursor: 7,
      },
      { secrets: {}, parent: [{ id: 1 }, { id: 2 }], config: { base_url: null }, cursor: null },
      { parent: null, secrets: 'flat', config: { base_url: 'u', account_id: 'a' } },
      { parent: () => 1, cursor: Number.NaN },
      {},
    ];
    for (const e of exprs)
      for (const b of bindingSets) {
        let want: { value?: unknown; error?: string };
        try {
          want = { value: await jsonata(e).evaluate(base, b) };
          if (typeof want.value === 'function') continue; // a function value: nothing a mapping can store
        } catch (err) {
          want = { error: String((err as { code?: string }).code ?? (err as Error).message) };
        }
        let got: { value?: unknown; error?: string };
        try {
          got = { value: await evaluate(e, base, b) };
        } catch (err) {
          got = { error: String((err as { code?: string }).code ?? (err as Error).message) };
        }
        expect(got, `${e} with ${Object.keys(b).join(',')}`).toStrictEqual(
          Array.isArray(want.value) ? { value: [...want.value] } : want,
        );
      }
  });

  it('falls back when a binding shadows a built-in', async () => {
    const f = fastExpression('$string(n)');
    expect(() => f?.({ n: 1 }, { string: () => 'x' }, {})).toThrow();
    expect(await evaluate('$string(n)', { n: 1 }, { string: () => 'mine' })).toBe('mine');
  });
});

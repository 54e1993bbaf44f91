import { describe, expect, it } from 'vitest';
import { COMMON_OPTIONS, parseOptions } from './args.ts';

describe('parseOptions', () => {
  it('parses --config/-c and --json with the command’s own options', () => {
    const { values, positionals } = parseOptions(
      ['-c', 'x.yaml', '--json', '--org', 'o'],
      { ...COMMON_OPTIONS, org: { type: 'string' } },
      { command: 'status' },
    );
    expect(values).toEqual({ config: 'x.yaml', json: true, org: 'o' });
    expect(positionals).toEqual([]);
  });

  it('an unknown option is a parse error (main turns it into RQ6001, exit 2)', () => {
    expect(() => parseOptions(['--bogus'], COMMON_OPTIONS, { command: 'status' })).toThrow(
      expect.objectContaining({ code: 'ERR_PARSE_ARGS_UNKNOWN_OPTION' }),
    );
  });

  it('checks the number of arguments and says what they are', () => {
    expect(() => parseOptions(['extra'], COMMON_OPTIONS, { command: 'status' })).toThrow(
      expect.objectContaining({
        code: 'RQ6001',
        message: expect.stringContaining('routiq status takes no arguments (got "extra")'),
      }),
    );
    expect(() =>
      parseOptions(['a'], COMMON_OPTIONS, { command: 'patients merge', positionals: 2, usage: '<from> <into>' }),
    ).toThrow(
      expect.objectContaining({
        message: expect.stringContaining('routiq patients merge takes <from> <into> (got 1)'),
      }),
    );
    expect(
      parseOptions(['a', 'b', 'c'], COMMON_OPTIONS, { command: 'lint', positionals: 'any' }).positionals,
    ).toHaveLength(3);
    expect(parseOptions(['a'], COMMON_OPTIONS, { command: 'x', positionals: [1, 2] }).positionals).toEqual(['a']);
    expect(() => parseOptions([], COMMON_OPTIONS, { command: 'x', positionals: [1, 2] })).toThrow(
      /takes 1 to 2 arguments/,
    );
  });
});

import { describe, expect, it } from 'vitest';
import { paint, stripAnsi } from '../output.ts';
import { colorFindings } from './lint.ts';

describe('lint findings in colour', () => {
  const text = [
    'connectors/x/connector.yaml:3:7 RQ2001 streams[0].records is required',
    'connectors/x/connector.yaml:9:1 RQ2014 warning: stream "a" is never used',
    '  a continuation line stays as it is',
  ].join('\n');

  it('colours the code red for an error and yellow for a warning; the text is unchanged', () => {
    const coloured = colorFindings(text, paint(true));
    expect(coloured).toContain('\x1b[31mRQ2001\x1b[0m streams[0]');
    expect(coloured).toContain('\x1b[33mRQ2014\x1b[0m \x1b[33mwarning:\x1b[0m stream');
    expect(stripAnsi(coloured)).toBe(text);
  });

  it('without colour the findings are exactly formatFindings’ text', () => {
    expect(colorFindings(text, paint(false))).toBe(text);
  });
});

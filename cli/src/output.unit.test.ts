import { describe, expect, it } from 'vitest';
import { colorEnabled, paint, stripAnsi } from './output.ts';

describe('colour (NO_COLOR, https://no-color.org)', () => {
  const tty = { isTTY: true };
  it('is on for a terminal only', () => {
    expect(colorEnabled(tty, {})).toBe(true);
    expect(colorEnabled({ isTTY: false }, {})).toBe(false);
    expect(colorEnabled({}, {})).toBe(false);
  });

  it('is off when NO_COLOR has a value, whatever the value; an empty NO_COLOR does not count', () => {
    expect(colorEnabled(tty, { NO_COLOR: '1' })).toBe(false);
    expect(colorEnabled(tty, { NO_COLOR: 'false' })).toBe(false);
    expect(colorEnabled(tty, { NO_COLOR: '' })).toBe(true);
    expect(colorEnabled(tty, { TERM: 'dumb' })).toBe(false);
  });

  it('paint(false) returns the text as it is; paint(true) wraps it in SGR codes that stripAnsi removes', () => {
    expect(paint(false).red('error')).toBe('error');
    expect(paint(true).red('error')).toBe('\x1b[31merror\x1b[0m');
    expect(paint(true).bold('')).toBe('');
    expect(stripAnsi(paint(true).yellow('warning'))).toBe('warning');
  });
});

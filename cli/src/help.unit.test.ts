import { describe, expect, it } from 'vitest';
import { COMMAND_NAMES, helpText } from './main.ts';

describe('--help of every command', () => {
  it('knows the commands, db shell included', () => {
    expect(COMMAND_NAMES).toEqual(expect.arrayContaining(['sync', 'dlq', 'patients', 'sql', 'db', 'help']));
    expect(COMMAND_NAMES).toHaveLength(16);
  });

  it.each(COMMAND_NAMES)('routiq %s --help has its usage and examples that run routiq', async (name) => {
    const text = await helpText(name);
    expect(text).toMatch(name === 'help' ? /Usage: routiq <command>/ : new RegExp(`Usage: routiq ${name}\\b`));
    const examples = text.split('\nExamples:\n')[1];
    expect(examples, `${name} has no Examples: section`).toBeDefined();
    const lines = (examples ?? '').split('\n').filter((l) => l.startsWith('  '));
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines)
      expect(line).toMatch(/\b(routiq|npm start|npm run)\b|^\s+[A-Z_]+=|^\s+(echo|printf|curl)\b/);
    // Help text reaches the terminal as it is: no colour escapes to strip for NO_COLOR.
    expect(text).not.toContain('\x1b[');
  });
});

import { describe, expect, it } from 'vitest';
import { splitStatements } from './sql-statements.ts';

describe('splitStatements', () => {
  it('splits at the semicolons that end statements and keeps an unfinished one as the rest', () => {
    expect(splitStatements('select 1; select 2;\nselect')).toEqual({
      statements: ['select 1', 'select 2'],
      rest: 'select',
    });
    expect(splitStatements('select 1\n  ;')).toEqual({ statements: ['select 1'], rest: '' });
    expect(splitStatements(' ;; ')).toEqual({ statements: [], rest: '' });
  });

  it('a semicolon in a string, a quoted identifier, a dollar-quoted body or a comment ends nothing', () => {
    expect(splitStatements(`select 'a;b', 'it''s;' as "x;y";`).statements).toEqual([`select 'a;b', 'it''s;' as "x;y"`]);
    expect(splitStatements('do $fn$ begin perform 1; end $fn$; select $$;$$;').statements).toEqual([
      'do $fn$ begin perform 1; end $fn$',
      'select $$;$$',
    ]);
    expect(splitStatements('select 1 -- not yet;\n, 2; /* ; */ select 3;').statements).toEqual([
      'select 1 -- not yet;\n, 2',
      '/* ; */ select 3',
    ]);
    expect(splitStatements('select $1::int, 2;').statements).toEqual(['select $1::int, 2']);
  });

  it('an open string or comment waits for more lines', () => {
    expect(splitStatements("select 'a;\nb")).toEqual({ statements: [], rest: "select 'a;\nb" });
    expect(splitStatements('select 1; /* open ;')).toEqual({ statements: ['select 1'], rest: '/* open ;' });
  });
});

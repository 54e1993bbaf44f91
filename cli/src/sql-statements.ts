/**
 * Splits SQL text into statements at the semicolons that end them, the way psql does: a `;` inside a string
 * ('…', E'…'), a quoted identifier ("…"), a dollar-quoted body ($$…$$, $fn$…$fn$) or a comment (-- …, /* … *\/)
 * ends nothing. Used by `routiq db shell` to know when the lines typed so far make a statement.
 */
export function splitStatements(text: string): { statements: string[]; rest: string } {
  const statements: string[] = [];
  let start = 0;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const ch = text[i] as string;
    const next = text[i + 1];
    if (ch === "'" || ch === '"') {
      // A doubled quote inside is an escaped quote: scanning on finds it as the next opening.
      const close = text.indexOf(ch, i + 1);
      if (close < 0) break;
      i = close + 1;
    } else if (ch === '-' && next === '-') {
      const eol = text.indexOf('\n', i);
      if (eol < 0) break;
      i = eol + 1;
    } else if (ch === '/' && next === '*') {
      const close = text.indexOf('*/', i + 2);
      if (close < 0) break;
      i = close + 2;
    } else if (ch === '$') {
      const tag = /^\$[A-Za-z_]?[A-Za-z0-9_]*\$/.exec(text.slice(i))?.[0];
      if (!tag) {
        i++;
        continue;
      }
      const close = text.indexOf(tag, i + tag.length);
      if (close < 0) break;
      i = close + tag.length;
    } else if (ch === ';') {
      const s = text.slice(start, i).trim();
      if (s) statements.push(s);
      start = i + 1;
      i++;
    } else {
      i++;
    }
  }
  return { statements, rest: text.slice(start).replace(/^\s+/, '') };
}

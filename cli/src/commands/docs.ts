import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { checkDocs, generateDocs } from '../../../runner/src/docs/index.ts';
import { ExitCode } from '../exit-codes.ts';
import { err, out } from '../output.ts';

const ROOT = path.resolve(import.meta.dirname, '../../..');

export async function docsCommand(o: { write: boolean; check: boolean }): Promise<number> {
  if (o.check) {
    const stale = checkDocs(ROOT);
    if (stale.length) {
      err(`generated docs are out of date: ${stale.join(', ')}\n  run: npm run docs:gen`);
      return ExitCode.Failure;
    }
    err('generated docs are up to date');
    return ExitCode.Ok;
  }
  const docs = generateDocs();
  if (o.write) {
    for (const [file, text] of Object.entries(docs)) writeFileSync(path.join(ROOT, file), text);
    err(`wrote ${Object.keys(docs).join(', ')}`);
  } else {
    out(Object.values(docs).join('\n'));
  }
  return ExitCode.Ok;
}

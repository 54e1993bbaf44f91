import path from 'node:path';
import { checkDocs, generateDocs, writeDocs } from '@routiq/runner/docs';
import { ExitCode } from '../exit-codes.ts';
import { err, out } from '../output.ts';

const ROOT = path.resolve(import.meta.dirname, '../../..');

export async function docsCommand(o: { write: boolean; check: boolean }): Promise<number> {
  if (o.check) {
    const stale = await checkDocs(ROOT);
    if (stale.length) {
      err(`generated files are out of date: ${stale.join(', ')}\n  run: npm run docs:gen`);
      return ExitCode.Failure;
    }
    err('generated files are up to date');
    return ExitCode.Ok;
  }
  if (o.write) {
    err(`wrote ${(await writeDocs(ROOT)).join(', ')}`);
  } else {
    out(Object.values(generateDocs()).join('\n'));
  }
  return ExitCode.Ok;
}

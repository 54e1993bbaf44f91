import { formatFindings, lintPaths } from '@routiq/runner/lint';
import { ExitCode } from '../exit-codes.ts';
import { err, out } from '../output.ts';

export async function lintCommand(o: { paths: string[]; format: string }): Promise<number> {
  if (o.format !== 'text' && o.format !== 'json') {
    err(`RQ6001 --format must be text or json, got "${o.format}"`);
    return ExitCode.Usage;
  }
  const paths = o.paths.length ? o.paths : ['connectors', 'examples'];
  const r = await lintPaths(paths);
  const text = formatFindings(r.findings, o.format);
  if (text) out(text);
  const errors = r.findings.filter((f) => f.severity === 'error').length;
  const warnings = r.findings.length - errors;
  err(`${r.files.length} file(s) checked: ${errors} error(s), ${warnings} warning(s)`);
  return errors ? ExitCode.Failure : ExitCode.Ok;
}

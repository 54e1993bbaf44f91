import { formatFindings, lintPaths } from '@routiq/runner/lint';
import { ExitCode } from '../exit-codes.ts';
import { colorEnabled, err, out, type Paint, paint } from '../output.ts';

export async function lintCommand(o: { paths: string[]; format: string }): Promise<number> {
  if (o.format !== 'text' && o.format !== 'json') {
    err(`RQ6001 --format must be text or json, got "${o.format}"`);
    return ExitCode.Usage;
  }
  const paths = o.paths.length ? o.paths : ['connectors', 'examples'];
  const r = await lintPaths(paths);
  const text = formatFindings(r.findings, o.format);
  if (text) out(o.format === 'text' && colorEnabled(process.stdout) ? colorFindings(text, paint(true)) : text);
  const errors = r.findings.filter((f) => f.severity === 'error').length;
  const warnings = r.findings.length - errors;
  err(`${r.files.length} file(s) checked: ${errors} error(s), ${warnings} warning(s)`);
  return errors ? ExitCode.Failure : ExitCode.Ok;
}

/** `file:line:col CODE [warning: ]message` with the code in red (an error) or yellow (a warning). */
export function colorFindings(text: string, c: Paint): string {
  return text.replace(/^(\S+:\d+:\d+) (RQ\d+) (warning: )?/gm, (_, where: string, code: string, warning?: string) =>
    warning ? `${c.dim(where)} ${c.yellow(code)} ${c.yellow(warning.trimEnd())} ` : `${c.dim(where)} ${c.red(code)} `,
  );
}

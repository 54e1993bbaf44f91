/** Renders the interactive workbench (loaded only by `routiq connector test` on a terminal). */
import type { WorkbenchReport } from '@routiq/runner/workbench';
import { render } from 'ink';
import { createElement } from 'react';
import { ExitCode } from '../exit-codes.ts';
import { colorEnabled } from '../output.ts';
import { App, type AppProps } from './app.ts';

export async function runInteractive(props: Omit<AppProps, 'onExit' | 'noColor'>): Promise<number> {
  let result: { report?: WorkbenchReport; error?: { code: string; message: string } } = {};
  const app = render(
    createElement(App, {
      ...props,
      noColor: !colorEnabled(process.stdout),
      onExit: (r) => {
        result = r;
      },
    }),
    { exitOnCtrlC: false },
  );
  await app.waitUntilExit();
  if (result.error) return ExitCode.Failure;
  return result.report && !result.report.ok ? ExitCode.Failure : ExitCode.Ok;
}

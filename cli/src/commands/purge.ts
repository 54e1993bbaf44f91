import { CLI_CORRELATION_ID, cliActor, purgeExpired } from '@routiq/runner';
import { COMMON_OPTIONS, parseOptions } from '../args.ts';
import { loadContext, withDatabase } from '../context.ts';
import { ExitCode } from '../exit-codes.ts';
import { err, out } from '../output.ts';

export const PURGE_HELP = `Usage: routiq purge [--config FILE] [--org ID] [--dry-run] [--json]

Deletes what is past its retention (config \`retention\`, runner.raw_retention_days; docs/database.md#retention):
resolved dead letters, raw payloads, pushed records kept in sync_state partitions, handled webhook deliveries. Open
dead letters and work still pending are kept. \`routiq serve\` runs the same purge daily. --dry-run counts only.
Every purge is in the audit log (action retention.purge): who, per organization the rows removed per table.
Examples:
  routiq purge --dry-run
  routiq purge --org org_demo_bondi_physio --json`;

export async function run(args: string[]): Promise<number> {
  if (args[0] === 'help') {
    out(PURGE_HELP);
    return ExitCode.Ok;
  }
  const { values } = parseOptions(
    args,
    { ...COMMON_OPTIONS, org: { type: 'string' }, 'dry-run': { type: 'boolean' } },
    { command: 'purge' },
  );
  const { config } = loadContext(values.config);
  const r = await withDatabase(config, (db) =>
    purgeExpired(db, config, {
      organizationId: values.org,
      dryRun: !!values['dry-run'],
      actor: cliActor(),
      correlationId: CLI_CORRELATION_ID,
    }),
  );
  const counts = {
    dead_letters: r.deadLetters,
    open_dead_letters: r.openDeadLetters,
    raw_records: r.rawRecords,
    pushed_records: r.pushedRecords,
    webhook_deliveries: r.webhookDeliveries,
  };
  if (values.json) out(JSON.stringify({ dry_run: r.dryRun, ...counts }));
  else {
    if (r.dryRun) err('dry run: nothing was deleted');
    for (const [k, v] of Object.entries(counts)) out(`${k}\t${v}`);
  }
  return ExitCode.Ok;
}

import { migrate } from '@routiq/runner';
import { loadContext, withDatabase } from '../context.ts';
import { ExitCode } from '../exit-codes.ts';
import { err, out } from '../output.ts';

export async function migrateCommand(o: { config?: string | undefined; json: boolean }): Promise<number> {
  const { config } = loadContext(o.config);
  return withDatabase(
    config,
    async (db) => {
      const r = await migrate(db);
      if (o.json) out(JSON.stringify({ database: db.describe, applied: r.applied, already_applied: r.alreadyApplied }));
      else {
        err(`database: ${db.describe}`);
        out(
          r.applied.length
            ? `applied ${r.applied.length} migration(s): ${r.applied.join(', ')}`
            : 'schema is up to date; nothing to apply',
        );
      }
      return ExitCode.Ok;
    },
    { requireMigrated: false },
  );
}

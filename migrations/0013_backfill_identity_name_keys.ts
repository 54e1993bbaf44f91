import { Migration } from '@mikro-orm/migrations';
import { identityNameKey } from '@routiq/sdk/identity';

/** Rows read and written per statement pair: bounded memory and statement size whatever the table holds. */
export const NAME_KEY_BACKFILL_BATCH = 1000;

/**
 * Name keys for the identities written before migration 0010 (which added `patient_identities.name_key` without
 * filling it): the candidate query finds namesakes through that index, so an old Cliniko patient whose record is
 * never rewritten would stay invisible to a new web-chat contact of the same name. The key is computed by the sdk
 * (`identityNameKey`: decorations, accents and nicknames folded), which SQL cannot reproduce, so the rows go through
 * JavaScript in batches of `NAME_KEY_BACKFILL_BATCH`, walking the primary key (keyset, no offset). Idempotent: only
 * rows whose key is still null are read and written, so a re-run (or an interrupted run resumed) does the rest.
 * Rows whose name yields no key (no surname) keep null and are read once per run.
 * Runs with the migrating role's rights (a superuser or the table owner with BYPASSRLS sees every organization).
 */
export class Migration0013BackfillIdentityNameKeys extends Migration {
  override async up(): Promise<void> {
    let after: string | null = null;
    for (;;) {
      const rows: Array<{
        id: string;
        first_name: string | null;
        last_name: string | null;
        display_name: string | null;
      }> = (await this.execute(
        `select id::text as id, first_name, last_name, display_name from patient_identities
           where name_key is null${after ? ' and id > ?::uuid' : ''} order by id limit ${NAME_KEY_BACKFILL_BATCH}`,
        after ? [after] : [],
      )) as never;
      if (rows.length === 0) return;
      const keyed: Array<[string, string]> = [];
      for (const r of rows) {
        const key = identityNameKey({
          source: '',
          externalId: '',
          firstName: r.first_name,
          lastName: r.last_name,
          displayName: r.display_name,
        });
        if (key) keyed.push([r.id, key]);
      }
      if (keyed.length > 0) {
        await this.execute(
          `update patient_identities t set name_key = v.name_key
           from (values ${keyed.map(() => '(?::uuid, ?)').join(', ')}) as v(id, name_key)
           where t.id = v.id and t.name_key is null`,
          keyed.flat(),
        );
      }
      after = rows[rows.length - 1]!.id;
    }
  }
}

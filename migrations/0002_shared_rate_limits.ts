import { Migration } from '@mikro-orm/migrations';

/**
 * Rate-limit budgets shared by every process using one database (several runner instances, the CLI next to the
 * service): a sliding log of request slots per budget key, and pauses a platform asked for (429 + reset).
 * Rows older than their window are pruned on every acquire, so the table stays small.
 */
export class Migration0002SharedRateLimits extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table rate_limit_slots (
      key text not null,
      taken_at timestamptz not null default clock_timestamp()
    )`);
    this.addSql('create index rate_limit_slots_key_idx on rate_limit_slots (key, taken_at)');
    this.addSql(`create table rate_limit_pauses (
      key text primary key,
      until timestamptz not null
    )`);
  }
}

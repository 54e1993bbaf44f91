import { Migration } from '@mikro-orm/migrations';

/**
 * Shared rate budgets in one row per budget key, updated by one statement per request (engine/ratelimit-pg.ts),
 * instead of a sliding log of one row per request of the window (whose count grew with the budget). `marks` is a
 * ring of the latest grant time of each chunk of `chunk` consecutive grants, `granted` counts grants, a platform's
 * 429 reset is `paused_until`. The log and the pauses table it replaces are dropped: nothing else uses them.
 */
export class Migration0006RateLimitBudgets extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table rate_limit_budgets (
      key text primary key,
      lim integer not null,
      window_ms integer not null,
      chunk integer not null,
      granted bigint not null default 0,
      marks timestamptz[] not null,
      paused_until timestamptz
    )`);
    this.addSql('drop table rate_limit_slots');
    this.addSql('drop table rate_limit_pauses');
  }
}

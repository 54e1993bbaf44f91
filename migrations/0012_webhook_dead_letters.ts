import { Migration } from '@mikro-orm/migrations';

/**
 * A webhook delivery that still fails after its last attempt is a dead letter of its own kind (`error_class`
 * `webhook`: the delivery's payload and headers are kept, it is neither one record nor one platform request). The
 * service has written it since the inbox (0004), but 0001's check constraint did not list the class, so the insert
 * failed and the delivery stayed `processing`. The constraint now allows it; `routiq dlq list --class webhook`
 * selects them.
 */
export class Migration0012WebhookDeadLetters extends Migration {
  override async up(): Promise<void> {
    this.addSql('alter table sync_errors drop constraint sync_errors_error_class_check');
    this.addSql(`alter table sync_errors add constraint sync_errors_error_class_check check (error_class in
      ('transient', 'rate_limited', 'auth', 'permanent', 'mapping', 'validation', 'hook', 'write', 'webhook'))`);
  }
}

import { Migration } from '@mikro-orm/migrations';

/**
 * Identity candidate lookups that stay index scans inside an organization (docs/identity.md#lookups-per-page).
 * Under row-level security (0007) PostgreSQL uses a query's condition as an index condition only when its
 * functions and operators are LEAKPROOF; `lower()` and jsonb `@>` are not (and only a superuser could mark them),
 * so a candidate query comparing `lower(email)` or probing `cross_refs @>` filtered every row of the organization.
 * Every key of the page query becomes a plain `=` on text, uuid or date (leakproof):
 * - `email_lower`, `last_name_lower`: stored generated columns, `lower()` of the stored value (what the query
 *   compared before; the inputs are trimmed and lower-cased by the caller), with btree indexes per organization;
 * - `identity_keys`: one row per cross-reference of an identity (kind `xref`, value `source` U+001F `external_id`;
 *   a source is a connector name, never containing U+001F) and per message evidence value (kind `evidence`, the
 *   value as stored: E.164 phone or lower-cased email), i.e. exactly what `cross_refs @> [{source, external_id}]`
 *   and `evidence @> [{value, origin: 'message'}]` matched. Kept by triggers on patient_identities (insert, and
 *   update of cross_refs or evidence); deleted with the identity (tenant foreign key, cascade); backfilled here.
 */
export class Migration0014IdentityKeys extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table patient_identities
      add column email_lower text generated always as (lower(email)) stored,
      add column last_name_lower text generated always as (lower(last_name)) stored`);
    this.addSql(
      'create index patient_identities_email_lower_idx on patient_identities (organization_id, email_lower) where email_lower is not null',
    );
    this.addSql(
      `create index patient_identities_last_name_dob_idx on patient_identities (organization_id, last_name_lower, date_of_birth)
         where last_name_lower is not null and date_of_birth is not null`,
    );
    this.addSql(
      'alter table patient_identities add constraint patient_identities_org_id_key unique (organization_id, id)',
    );

    this.addSql(`create table identity_keys (
      organization_id text not null,
      identity_id uuid not null,
      kind text not null check (kind in ('xref', 'evidence')),
      value text not null,
      primary key (organization_id, kind, value, identity_id),
      constraint identity_keys_identity_org_fkey foreign key (organization_id, identity_id)
        references patient_identities (organization_id, id) on delete cascade
    )`);
    this.addSql('create index identity_keys_identity_idx on identity_keys (organization_id, identity_id)');

    // The keys of one identity, as the jsonb containment probes they replace matched them.
    this.addSql(`create function patient_identity_keys(cross_refs jsonb, evidence jsonb)
      returns table (kind text, value text) language sql immutable as $f$
        select 'xref', (r->>'source') || chr(31) || (r->>'external_id')
          from jsonb_array_elements(case when jsonb_typeof(cross_refs) = 'array' then cross_refs else '[]'::jsonb end) r
         where jsonb_typeof(r->'source') = 'string' and jsonb_typeof(r->'external_id') = 'string'
        union
        select 'evidence', e->>'value'
          from jsonb_array_elements(case when jsonb_typeof(evidence) = 'array' then evidence else '[]'::jsonb end) e
         where e->'origin' = '"message"'::jsonb and jsonb_typeof(e->'value') = 'string'
      $f$`);
    // SECURITY INVOKER: the writer's role writes the keys, under the same row-level security as the identity.
    this.addSql(`create function patient_identity_keys_sync() returns trigger language plpgsql as $f$
      begin
        if tg_op = 'UPDATE' then
          delete from identity_keys where organization_id = old.organization_id and identity_id = old.id;
        end if;
        insert into identity_keys (organization_id, identity_id, kind, value)
          select new.organization_id, new.id, k.kind, k.value from patient_identity_keys(new.cross_refs, new.evidence) k
          on conflict do nothing;
        return null;
      end $f$`);
    this.addSql(`create trigger patient_identities_keys_insert after insert on patient_identities
      for each row execute function patient_identity_keys_sync()`);
    this.addSql(`create trigger patient_identities_keys_update after update of cross_refs, evidence on patient_identities
      for each row when (old.cross_refs is distinct from new.cross_refs or old.evidence is distinct from new.evidence)
      execute function patient_identity_keys_sync()`);

    // Backfill (the migrating role sees every organization), one set-based statement.
    this.addSql(`insert into identity_keys (organization_id, identity_id, kind, value)
      select i.organization_id, i.id, k.kind, k.value
        from patient_identities i cross join lateral patient_identity_keys(i.cross_refs, i.evidence) k
      on conflict do nothing`);
    // A tenant table: owner, grants, forced row-level security (0007).
    this.addSql(`select routiq_protect_table('identity_keys')`);
  }
}

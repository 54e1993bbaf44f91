import type { CandidateQuery, StoredIdentity } from '../hooks.ts';
import { identityKey, identityNameKey } from './prepare.ts';

/**
 * An in-memory identity store whose `findCandidates` mirrors the SQL the engine runs, so offline evaluation
 * and tests exercise the same candidate sets as production:
 *
 *   WHERE organization_id = $org AND (
 *        phone_e164 = ANY($phones)
 *     OR lower(trim(email)) = ANY($emails)
 *     OR (source, external_id) IN ($crossRefs)
 *     OR cross_refs && $crossRefs                    -- reverse direction and shared targets
 *     OR (lower(trim(last_name)), date_of_birth) = ($lastName, $dob)
 *     OR name_key = ANY($nameKeys)
 *     OR evidence @> [{ value: $phone | $email, origin: 'message' }])   -- written in a conversation
 *
 * It indexes what is stored, as the database would: `phoneE164` must already be normalised
 * (see `normalizeIdentityForStorage`); `phoneRaw` is never searched.
 */
export class MemoryIdentityStore {
  private readonly byKey = new Map<string, StoredIdentity>();
  private readonly index = new Map<string, Set<string>>();
  /** Name keys given with `add` (as stored), by identity key. */
  private readonly nameKeys = new Map<string, string | null>();

  get size(): number {
    return this.byKey.size;
  }

  get(source: string, externalId: string): StoredIdentity | undefined {
    return this.byKey.get(identityKey(source, externalId));
  }

  all(): StoredIdentity[] {
    return [...this.byKey.values()];
  }

  /**
   * Insert or replace an identity (same source + externalId). `opts.nameKey`: its name key as stored
   * (`patient_identities.name_key`), instead of computing it; `opts.owned`: the caller hands the object over (a row
   * it just read), so the store keeps it rather than a copy.
   */
  add(identity: StoredIdentity, opts: { nameKey?: string | null; owned?: boolean } = {}): void {
    const key = identityKey(identity.source, identity.externalId);
    const previous = this.byKey.get(key);
    if (previous) for (const k of this.indexKeys(previous)) this.index.get(k)?.delete(key);
    let copy = identity;
    if (!opts.owned) {
      copy = { ...identity };
      if (identity.crossRefs) copy.crossRefs = identity.crossRefs.map((r) => ({ ...r }));
    }
    this.byKey.set(key, copy);
    if (opts.nameKey !== undefined) this.nameKeys.set(key, opts.nameKey);
    else this.nameKeys.delete(key);
    for (const k of this.indexKeys(copy)) {
      let set = this.index.get(k);
      if (!set) {
        set = new Set();
        this.index.set(k, set);
      }
      set.add(key);
    }
  }

  /** Move every identity of one patient to another (what an engine-side patient merge does). */
  relink(fromPatientId: string, toPatientId: string): number {
    let moved = 0;
    for (const s of this.byKey.values()) {
      if (s.patientId !== fromPatientId) continue;
      s.patientId = toPatientId;
      moved++;
    }
    return moved;
  }

  findCandidates(query: CandidateQuery): StoredIdentity[] {
    return [...this.findKeys(query)].map((k) => ({ ...this.byKey.get(k)! }));
  }

  /**
   * The `source:externalId` keys of the identities `findCandidates` returns, in the same order, without copying
   * them (the reconcile plan looks its own objects up by key).
   */
  findKeys(query: CandidateQuery): Set<string> {
    const keys = new Set<string>();
    const collect = (k: string) => {
      for (const key of this.index.get(k) ?? []) keys.add(key);
    };
    for (const p of query.phonesE164) collect(`p:${p}`);
    for (const e of query.emails) collect(`e:${e.trim().toLowerCase()}`);
    for (const r of query.crossRefs) {
      const k = identityKey(r.source, r.externalId);
      collect(`k:${k}`);
      collect(`x:${k}`);
    }
    if (query.lastNameDob)
      collect(`ld:${query.lastNameDob.lastName.trim().toLowerCase()}|${query.lastNameDob.dateOfBirth}`);
    for (const n of query.nameKeys ?? []) collect(`n:${n}`);
    return keys;
  }

  private indexKeys(s: StoredIdentity): string[] {
    const out = [`k:${identityKey(s.source, s.externalId)}`];
    if (s.phoneE164) out.push(`p:${s.phoneE164}`);
    const email = s.email?.trim().toLowerCase();
    if (email) out.push(`e:${email}`);
    for (const r of s.crossRefs ?? []) out.push(`x:${identityKey(r.source, r.externalId)}`);
    const last = s.lastName?.trim().toLowerCase();
    if (last && s.dateOfBirth) out.push(`ld:${last}|${s.dateOfBirth}`);
    const given = this.nameKeys.get(identityKey(s.source, s.externalId));
    const nameKey = given === undefined ? identityNameKey(s) : given;
    if (nameKey) out.push(`n:${nameKey}`);
    // Evidence is stored normalised (`normalizeIdentityForStorage`).
    for (const e of s.evidence ?? []) {
      if (e.origin === 'message') out.push(e.kind === 'phone' ? `p:${e.value}` : `e:${e.value}`);
    }
    return out;
  }
}

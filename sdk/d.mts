import { generateLabelledSet, toIdentityInput } from './src/identity/labelled.ts';
import { decideMatch } from './src/identity/match.ts';
import { MemoryIdentityStore } from './src/identity/memory-store.ts';
import { candidateQueryFor, normalizeIdentityForStorage, prepareIdentity } from './src/identity/prepare.ts';
import { readIdentitySettings } from './src/identity/settings.ts';
import { normalizePhone } from './src/phone/normalize.ts';
const seed = Number(process.argv[2]); const persons = new Set(process.argv.slice(3));
const set = generateLabelledSet({ seed });
const store = new MemoryIdentityStore(); let n = 0; const settings = readIdentitySettings({});
for (const l of set.identities) {
  const input = toIdentityInput(l);
  const cands = store.findCandidates(candidateQueryFor(input, 'AU'));
  const d = decideMatch(prepareIdentity(input, 'AU'), cands, settings, 'AU');
  const pid = d.result.patientId ?? `patient_${++n}`;
  store.add({ ...normalizeIdentityForStorage(input, 'AU'), patientId: pid });
  if (process.env.BRIDGE) for (const b of d.bridges) store.relink(b, pid);
  if (persons.has(l.personId)) console.log(l.personId, `${l.source}:${l.externalId}`, JSON.stringify(l.displayName ?? `${l.firstName} ${l.lastName}`), l.phoneRaw, normalizePhone(l.phoneRaw, {defaultCountry:'AU', countryHint: l.countryHint ?? null}).e164, '→', pid, d.detail, cands.map(c=>`${c.source}:${c.externalId}/${c.patientId}`).join(' '));
}

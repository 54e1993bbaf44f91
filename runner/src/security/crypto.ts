/**
 * Envelope encryption of stored credentials: AES-256-GCM (node:crypto), a fresh 96-bit IV per value, the row's
 * identity (organization, connection, name, key id) as additional authenticated data so a sealed value copied into
 * another organization's row does not open. Keys come from ROUTIQ_ENCRYPTION_KEYS (docs/security.md):
 *
 *   ROUTIQ_ENCRYPTION_KEYS="k2027:<base64 of 32 bytes>,k2026:<base64 of 32 bytes>"
 *
 * The first key seals; every listed key opens. No message ever contains key material or a plaintext.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { RoutiqError } from '../errors/registry.ts';

export const KEYS_VARIABLE = 'ROUTIQ_ENCRYPTION_KEYS';
const KEY_ID = /^[A-Za-z0-9_.-]{1,64}$/;

export interface KeyRing {
  /** The key id new values are sealed with (the first listed). */
  primary: string;
  keys: ReadonlyMap<string, Buffer>;
}

export interface Sealed {
  keyId: string;
  iv: Buffer;
  ciphertext: Buffer;
  tag: Buffer;
}

/** Parse `id:base64,id:base64…`; every problem names the entry by position and id, never its key. */
export function parseKeyRing(value: string, source = KEYS_VARIABLE): KeyRing {
  const keys = new Map<string, Buffer>();
  let primary: string | undefined;
  const entries = value
    .split(/[,\s]+/)
    .map((s) => s.trim())
    .filter(Boolean);
  if (!entries.length) throw keyError(`${source} is empty`);
  entries.forEach((entry, i) => {
    const sep = entry.indexOf(':');
    const id = sep > 0 ? entry.slice(0, sep) : '';
    if (!KEY_ID.test(id))
      throw keyError(`${source} entry ${i + 1} does not start with a key id (letters, digits, _ . -) and ":"`);
    const b64 = entry.slice(sep + 1);
    const key = /^[A-Za-z0-9+/_-]+={0,2}$/.test(b64) ? Buffer.from(b64, 'base64') : Buffer.alloc(0);
    if (key.length !== 32)
      throw keyError(`${source} key "${id}" is not 32 bytes of base64 (generate one with: openssl rand -base64 32)`);
    if (keys.has(id)) throw keyError(`${source} lists key id "${id}" twice`);
    keys.set(id, key);
    primary ??= id;
  });
  return { primary: primary as string, keys };
}

/** The key ring from the environment, or undefined when the variable is not set. */
export function keyRingFromEnv(env: NodeJS.ProcessEnv = process.env): KeyRing | undefined {
  const v = env[KEYS_VARIABLE];
  return v?.trim() ? parseKeyRing(v) : undefined;
}

/** The key ring, or an error saying that the credential store needs one. */
export function requireKeyRing(env: NodeJS.ProcessEnv = process.env, why = 'the credential store'): KeyRing {
  const ring = keyRingFromEnv(env);
  if (!ring) throw keyError(`${KEYS_VARIABLE} is not set; ${why} needs it`);
  return ring;
}

function keyError(message: string): RoutiqError {
  return new RoutiqError('RQ1020', message, { where: KEYS_VARIABLE });
}

export function seal(ring: KeyRing, plaintext: string, aad: string): Sealed {
  const keyId = ring.primary;
  const key = ring.keys.get(keyId) as Buffer;
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(`${aad}\u0000${keyId}`));
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return { keyId, iv, ciphertext, tag: cipher.getAuthTag() };
}

/** Open a sealed value; `where` names the row in errors (never the value). */
export function open(ring: KeyRing, s: Sealed, aad: string, where: string): string {
  const key = ring.keys.get(s.keyId);
  if (!key)
    throw new RoutiqError(
      'RQ1021',
      `credential ${where} is sealed with key "${s.keyId}", which ${KEYS_VARIABLE} does not list (it lists ${[...ring.keys.keys()].join(', ')})`,
      { where },
    );
  try {
    const d = createDecipheriv('aes-256-gcm', key, s.iv);
    d.setAAD(Buffer.from(`${aad}\u0000${s.keyId}`));
    d.setAuthTag(s.tag);
    return Buffer.concat([d.update(s.ciphertext), d.final()]).toString('utf8');
  } catch {
    throw new RoutiqError(
      'RQ1021',
      `credential ${where} does not open with key "${s.keyId}" (a different key under the same id, or a tampered row)`,
      { where },
    );
  }
}

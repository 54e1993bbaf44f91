/**
 * What of a connection's traffic carries credentials, and how to show or store that traffic without them: the auth
 * spec's header or query parameter, every header or parameter whose template reads `$secrets`, and any secret value
 * wherever else it appears (a platform echoing a token in a body).
 */
import type { ConnectorSpec } from '../spec/types.ts';

export interface CredentialNames {
  /** Lower-cased header names. */
  headers: string[];
  query: string[];
}

const ALWAYS_HEADERS = ['authorization', 'proxy-authorization', 'cookie', 'set-cookie'];

export function credentialNames(spec: ConnectorSpec): CredentialNames {
  const headers = new Set(ALWAYS_HEADERS);
  const query = new Set<string>();
  const auth = spec.auth;
  if (auth.type === 'api_key')
    (auth.in === 'header' ? headers : query).add(auth.in === 'header' ? auth.name.toLowerCase() : auth.name);
  const reads = (v: unknown) => JSON.stringify(v ?? '').includes('$secrets');
  const requests = [spec.request, ...spec.streams.map((s) => s.request)];
  for (const r of requests) {
    for (const [k, v] of Object.entries(r?.headers ?? {})) if (reads(v)) headers.add(k.toLowerCase());
    for (const [k, v] of Object.entries(r?.params ?? {})) if (reads(v)) query.add(k);
  }
  return { headers: [...headers].sort(), query: [...query].sort() };
}

export const SCRUBBED = '[scrubbed]';

/** Replace every secret value (4 characters or more: shorter ones would mangle ordinary text) in a string. */
export function scrubSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of [...secrets].filter((x) => x.length >= 4).sort((a, b) => b.length - a.length)) {
    out = out.replaceAll(s, SCRUBBED);
    const enc = encodeURIComponent(s);
    if (enc !== s) out = out.replaceAll(enc, SCRUBBED);
  }
  return out;
}

/** A URL without its credential query parameters, any remaining secret value scrubbed. */
export function scrubUrl(url: string, names: CredentialNames, secrets: readonly string[]): string {
  if (!URL.canParse(url)) return scrubSecrets(url, secrets);
  const u = new URL(url);
  for (const q of names.query) u.searchParams.delete(q);
  return scrubSecrets(u.toString(), secrets);
}

/** Headers without credential headers; what remains has secret values scrubbed. */
export function scrubHeaders(
  headers: Record<string, string | string[] | undefined>,
  names: CredentialNames,
  secrets: readonly string[],
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || names.headers.includes(k.toLowerCase())) continue;
    out[k] = scrubSecrets(Array.isArray(v) ? v.join(', ') : v, secrets);
  }
  return out;
}

/** A JSON value with secret values scrubbed in every string. */
export function scrubValue(v: unknown, secrets: readonly string[]): unknown {
  if (v === undefined) return undefined;
  return JSON.parse(
    scrubSecrets(
      JSON.stringify(v),
      secrets.map((s) => JSON.stringify(s).slice(1, -1)),
    ),
  );
}

/**
 * Credentials embedded in URLs (`scheme://user:password@host`) must never reach a log line, an error message or a
 * lint finding: the password is replaced by `***`, the user name is kept (it helps and is rarely secret).
 */

// The password runs to the LAST `@` of the authority (an unencoded `@` in a password must not leak its tail), so it
// stops only at what ends an authority or a quoted string: / ? # whitespace quotes and angle brackets.
// A backslash escape (`\"` in a JSON line) is part of the password, not its end.
const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s/?#@:"'<>`\\]*):((?:[^\s/?#"'<>`\\]|\\.)*)@/gi;

export function redactUrlCredentials(text: string): string {
  if (!text.includes('://')) return text;
  return text.replace(URL_CREDENTIALS, (_m, scheme: string, user: string) => `${scheme}${user}:***@`);
}

/** True when the text holds a `scheme://user:password@` with a non-empty password. */
export function hasUrlPassword(text: string): boolean {
  for (const m of text.matchAll(URL_CREDENTIALS)) if (m[3]) return true;
  return false;
}

/** The environment variables routiq reads, and the ones that can never hold a connection secret. */

/** Environment variables that override file values; `.env.example` lists them all. */
export const ENV_OVERRIDES = {
  DATABASE_URL: 'database.url',
  ROUTIQ_DB_DIR: 'database.embedded_dir',
  ROUTIQ_DB_POOL_MAX: 'database.pool_max',
  ROUTIQ_DB_SCHEMA: 'database.schema',
  ROUTIQ_LOG_LEVEL: 'log.level',
  ROUTIQ_HTTP_TIMEOUT_MS: 'http.timeout_ms',
  ROUTIQ_CONNECTORS_DIR: 'connectors_dir',
} as const;

/** routiq's own settings: configuration, not secrets. */
const ROUTIQ_VARIABLES = new Set<string>([
  ...Object.keys(ENV_OVERRIDES),
  'ROUTIQ_ENV',
  'ROUTIQ_CONFIG',
  'ROUTIQ_FROM_SOURCE',
  'ROUTIQ_TEST_PG_URL',
  'ROUTIQ_ENCRYPTION_KEYS',
  'ROUTIQ_SERVICE_TOKEN',
]);

/**
 * Variables the shell, the OS, Node, npm or libpq set for their own purposes. A `${HOME}` under `secrets:` is a
 * mistake (often a copy-paste placeholder) that would send a path or a user name to a platform as a credential.
 */
const SYSTEM_VARIABLES = new Set<string>([
  'HOME',
  'PATH',
  'PWD',
  'OLDPWD',
  'USER',
  'USERNAME',
  'LOGNAME',
  'SHELL',
  'SHLVL',
  'LANG',
  'LANGUAGE',
  'TERM',
  'COLORTERM',
  'HOSTNAME',
  'HOSTTYPE',
  'MAIL',
  'EDITOR',
  'VISUAL',
  'PAGER',
  'DISPLAY',
  'TZ',
  'TMPDIR',
  'TMP',
  'TEMP',
  'COLUMNS',
  'LINES',
  'CI',
  'NODE_ENV',
  'NODE_OPTIONS',
  'NODE_PATH',
  'NODE_EXTRA_CA_CERTS',
  'PGHOST',
  'PGPORT',
  'PGUSER',
  'PGDATABASE',
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'NO_PROXY',
  '_',
]);

const SYSTEM_PREFIXES = ['NPM_', 'LC_', 'XDG_', 'SSH_'];

/** Why `name` cannot hold a connection secret, or undefined when it may. */
export function notASecretVariable(name: string): string | undefined {
  if (ROUTIQ_VARIABLES.has(name)) return `${name} is a routiq setting, not a secret`;
  if (SYSTEM_VARIABLES.has(name)) return `${name} is a system variable, not a secret`;
  const prefix = SYSTEM_PREFIXES.find((p) => name.toUpperCase().startsWith(p));
  if (prefix) return `${prefix}* variables belong to other tools (${prefix === 'NPM_' ? 'npm' : 'the system'})`;
  return undefined;
}

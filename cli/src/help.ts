export const HELP = `routiq — sync patient conversations and appointments into one PostgreSQL database

Usage: routiq <command> [options]

Commands:
  demo                 Start the bundled simulators and sync two demo organizations (the README's main job)
  migrate              Apply database migrations (idempotent)
  sync                 Run one sync pass and exit
  serve                Run as a service: webhooks, schedules, health, metrics, status API
  status               Last runs and stream checkpoints per organization
  dlq                  Dead letters: list | show | replay | resolve
  patients             Identity: duplicates | merge | unmerge | reconcile | evaluate
  credentials          Encrypted per-organization secrets: set | list | rotate | delete
  connector            Connector workbench: test <name> (interactive test read, --record, --replay) | list
  sql "<query>"        Run one SQL statement against the configured database (read-only unless --write)
  db shell             SQL prompt on the configured database, embedded included (statements piped: run in order)
  init connector NAME  Scaffold connectors/NAME (spec, README, fixtures, a data test, hooks.ts)
  purge                Delete what is past its retention (dead letters, raw payloads, pushed records)
  lint [paths…]        Validate connector specs and config files
  docs                 Regenerate (--write) or check (--check) generated docs
  help [command]       Help for a command

Environment:
  ROUTIQ_ENV           Selects config/<env>.yaml (default development)
  DATABASE_URL         PostgreSQL server; unset = embedded PostgreSQL in .routiq/db
  ROUTIQ_LOG_LEVEL     trace|debug|info|warn|error|silent (logs are JSON lines on stderr)
  ROUTIQ_ENCRYPTION_KEYS  id:base64key[,…] for the credential store (the first key seals)

Output: data on stdout, messages on stderr; --json for machines. On a terminal, long commands (sync, dlq replay,
patients reconcile) draw a progress line on stderr; colour only on a terminal and never with NO_COLOR set.
Exit codes: 0 ok, 1 problems found (lint findings, failed/partial sync), 2 usage, 3 config/spec, 4 database, 70 internal.

Examples:
  npm start                                   # routiq demo: simulators, embedded database, two organizations
  routiq sync --org org_demo_bondi_physio     # one pass of one organization's connections
  routiq status --json
  routiq db shell                             # SQL on the configured database (the demo's after npm start)
  routiq help sync                            # or: routiq sync --help
`;

const COMMANDS: Record<string, string> = {
  migrate: `Usage: routiq migrate [--config FILE] [--json]

Applies pending migrations. Safe to run twice. Refuses a database migrated by a newer routiq (RQ4002).
Examples:
  routiq migrate
  DATABASE_URL=postgresql://routiq@db.internal:5432/routiq routiq migrate --json`,
  sync: `Usage: routiq sync [--config FILE] [--org ID] [--connector NAME] [--stream NAME] [--full-refresh] [--json]

Runs one pass of every enabled connection (or those selected) and exits.
  --full-refresh   ignore stored cursors (nothing is deleted; rows not seen are left as they are)
  --json           print a per-stream summary on stdout (and no progress line)
On a terminal a progress line on stderr shows, per connection, the streams done, the current stream's pages and
records, requests and rate-limit waits.
Exit 0 when every run succeeded, 1 when any failed or was partial, 4 when the database failed.
Examples:
  routiq sync
  routiq sync --org org_demo_bondi_physio --connector cliniko --stream appointments
  routiq sync --full-refresh --json > runs.json`,
  serve: `Usage: routiq serve [--config FILE] [--port N] [--host ADDR] [--migrate] [--json]

Runs until SIGTERM/SIGINT (drains, exit 0). SIGHUP or saving the config file reloads schedules, budgets, log level
and organizations (secrets come from the environment and need a restart).
  POST /webhooks/<org>/<connection>   platform webhooks (authenticated as the connector spec declares)
  GET  /health/live, /health/ready    orchestrator probes (ready: database, migrations, queue; 503 while draining)
  GET  /metrics                       Prometheus (routiq_ prefix)
  GET  /api/status, POST /api/syncs, POST /api/dlq/replay   admin API: Authorization: Bearer $ROUTIQ_SERVICE_TOKEN
  GET  /status                        status page for operators (sign in with $ROUTIQ_SERVICE_TOKEN)
  GET  /openapi.json                  every endpoint as OpenAPI 3.1
Several instances on one PostgreSQL share the work (pg-boss); on the embedded database run one.
  --port           default $PORT or 8080     --migrate   apply migrations first (single instance)
Examples:
  ROUTIQ_SERVICE_TOKEN=… routiq serve --config config/production.yaml
  curl -H "Authorization: Bearer $ROUTIQ_SERVICE_TOKEN" localhost:8080/api/status`,
  lint: `Usage: routiq lint [paths…] [--format text|json]

Validates connector specs (JSON Schema + semantic checks) and config files. Prints file:line:col CODE message.
Exit 0 clean (warnings allowed), 1 findings, 2 usage error. Default paths: connectors examples.
On a terminal the codes are coloured (red error, yellow warning) unless NO_COLOR is set.
Examples:
  routiq lint
  routiq lint connectors/chatwoot/connector.yaml config/production.yaml
  routiq lint connectors --json > findings.json`,
  docs: `Usage: routiq docs [--write | --check]

Generates docs/connector-spec.md, docs/errors.md and docs/configuration.md from the JSON Schema, the error registry
and the config schema. --check exits 1 when a generated file is out of date (npm run check runs it).
Examples:
  npm run docs:gen       # routiq docs --write
  routiq docs --check`,
  demo: `Usage: routiq demo [--orgs N] [--scale N] [--json] [--serve [--port N]]

Starts the Chatwoot, Cliniko and ManyChat simulators on loopback, the embedded database (.routiq/demo-db), migrates,
registers demo organizations with all three connectors, runs a full sync then an incremental one, and prints a summary.
  --serve   then keep running as \`routiq serve\` on --port (default 8080): the simulators push their webhooks to it,
            every connection syncs once a minute, and it prints a curl to post a webhook and watch the row appear.
Examples:
  npm start              # routiq demo
  routiq demo --orgs 5 --scale 3 --json
  routiq demo --serve --port 8081`,
};

export function helpFor(command: string): string {
  return COMMANDS[command] ?? HELP;
}

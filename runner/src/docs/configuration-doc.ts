import configSchema from '@routiq/schemas/config.schema.json' with { type: 'json' };
import { ENV_OVERRIDES } from '../config/load.ts';
import { code, table } from './markdown.ts';

type Node = Record<string, unknown>;

function typeOf(p: Node): string {
  if (p.enum) return (p.enum as unknown[]).map((v) => JSON.stringify(v)).join(' | ');
  if (p.$ref) return String(p.$ref).split('/').pop() ?? 'object';
  const t = p.type;
  return Array.isArray(t) ? t.join(' | ') : String(t ?? 'any');
}

function rows(props: Record<string, Node>, prefix: string, envFor: Map<string, string>, out: string[][]): void {
  for (const [key, p] of Object.entries(props)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (p.type === 'object' && p.properties) {
      rows(p.properties as Record<string, Node>, path, envFor, out);
      continue;
    }
    const bounds = [
      p.minimum !== undefined ? `≥ ${String(p.minimum)}` : '',
      p.maximum !== undefined ? `≤ ${String(p.maximum)}` : '',
    ]
      .filter(Boolean)
      .join(', ');
    out.push([
      code(path),
      typeOf(p) + (bounds ? ` (${bounds})` : ''),
      p.default === undefined ? '' : code(JSON.stringify(p.default)),
      envFor.get(path) ? code(envFor.get(path) as string) : '',
      String(p.description ?? ''),
    ]);
  }
}

/** docs/configuration.md from schemas/config.schema.json and the environment overrides. */
export function configurationDoc(): string {
  const schema = configSchema as unknown as Node;
  const envFor = new Map(Object.entries(ENV_OVERRIDES).map(([env, key]) => [key, env]));
  const top: string[][] = [];
  rows(schema.properties as Record<string, Node>, '', envFor, top);
  const defs = schema.definitions as Record<string, Node>;
  const org: string[][] = [];
  rows((defs.organization as Node).properties as Record<string, Node>, 'organizations[]', envFor, org);
  const conn: string[][] = [];
  rows((defs.connection as Node).properties as Record<string, Node>, 'organizations[].connections[]', envFor, conn);
  const header = ['key', 'type', 'default', 'env override', 'description'];
  return `> Generated from \`schemas/config.schema.json\` by \`npm run docs:gen\`; do not edit.

# Configuration

${String(schema.description ?? '')}

The file is \`config/<ROUTIQ_ENV>.yaml\` (\`ROUTIQ_ENV\` defaults to \`development\`), or the one given with \`--config\`
(or \`ROUTIQ_CONFIG\`). It is validated at start-up; every bad value is reported with its key and \`file:line:col\`
(RQ1003), and a bad environment override names the variable (RQ1005). Environment variables override the file.
Secrets never appear in the file: a connection lists them under \`secrets:\` as \`\${ENV_VAR}\` references, resolved
when the connection runs (RQ1004 names a missing variable). \`.env.example\` lists every variable.

Start-up (and \`routiq lint\` of the file) also checks what is known before anything runs: each connection's
connector exists in \`connectors_dir\` (RQ1006, listing the known ones), \`config:\` holds only the connector's
non-secret settings and \`secrets:\` only its secret ones (RQ1007); a literal secret, a reference to a variable that
cannot hold one (\`\${HOME}\`, \`\${PATH}\`, \`\${NODE_OPTIONS}\`, \`npm_*\`, routiq's own settings such as
\`\${DATABASE_URL}\`) and a password written into \`database.url\` or a URL setting are refused (RQ1003). No message
repeats the refused value. \`database.url\` can take its password from the environment:
\`postgresql://routiq:\${DB_PASSWORD}@db.internal/routiq\` (the value is percent-encoded into the URL).

## Settings

${table(
  header,
  top.filter((r) => !r[0]?.startsWith('`organizations')),
)}

## Organizations

${table(
  header,
  org.filter((r) => !r[0]?.includes('connections')),
)}

## Connections

A connection's \`config\` and \`secrets\` are checked against its connector's \`connection\` schema (see each
connector's README); an unknown or misplaced setting is RQ1007.

${table(header, conn)}
`;
}

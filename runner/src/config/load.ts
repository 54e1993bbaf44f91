import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import configSchema from '@routiq/schemas/config.schema.json' with { type: 'json' };
import { Ajv, type ErrorObject } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { RoutiqError } from '../errors/registry.ts';
import { validateCron } from '../service/schedule.ts';
import { parseYamlSource } from '../util/yaml-source.ts';
import { type ConfigPath, type ConfigProblem, staticConfigProblems, withoutSecrets } from './checks.ts';
import { ENV_OVERRIDES, notASecretVariable } from './environment.ts';
import type { AlertRule, AlertsConfig, ConnectionConfig, OrganizationConfig, RoutiqConfig } from './types.ts';

export { ENV_OVERRIDES };

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

export interface LoadConfigOptions {
  /** Explicit file (--config). Default: config/<ROUTIQ_ENV or development>.yaml under cwd. */
  file?: string | undefined;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

let validator: ReturnType<Ajv['compile']> | undefined;
function validate(value: unknown): ErrorObject[] {
  if (!validator) {
    const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false });
    addFormats(ajv);
    validator = ajv.compile(configSchema);
  }
  return validator(value) ? [] : [...(validator.errors ?? [])];
}

export function loadConfig(opts: LoadConfigOptions = {}): RoutiqConfig {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  const envName = env.ROUTIQ_ENV || 'development';
  if (!/^[a-z][a-z0-9_-]*$/.test(envName)) {
    throw new RoutiqError('RQ1005', `ROUTIQ_ENV="${envName}" is not a valid environment name`, { where: 'ROUTIQ_ENV' });
  }
  const file = path.resolve(cwd, opts.file ?? env.ROUTIQ_CONFIG ?? path.join('config', `${envName}.yaml`));
  const rel = path.relative(cwd, file) || file;
  if (!existsSync(file)) throw new RoutiqError('RQ1001', `configuration file ${rel} does not exist`, { where: rel });

  const src = parseYamlSource(readFileSync(file, 'utf8'), rel);
  const first = src.errors[0];
  if (first) throw new RoutiqError('RQ1002', first.message, { where: `${rel}:${first.pos.line}:${first.pos.col}` });
  const raw = (src.value ?? {}) as Record<string, unknown>;
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new RoutiqError('RQ1003', 'the configuration must be a mapping of keys', { where: `${rel}:1:1` });
  }

  // File values are validated where they stand, so the message can point at file:line:col; then everything else
  // that is known before anything runs (connectors, settings, secret references), so a typo fails at start-up.
  // Secrets are validated out of sight: no message may repeat one.
  const at = (p: ConfigPath, which: 'key' | 'value') => `${rel}:${fmtPos(src.positionOf(p, which))}`;
  const fileErrors = validate(structuredClone(withoutSecrets(raw)));
  const connectorsDir = path.resolve(
    cwd,
    env.ROUTIQ_CONNECTORS_DIR || (typeof raw.connectors_dir === 'string' ? raw.connectors_dir : 'connectors'),
  );
  const problems = staticConfigProblems(raw, {
    connectorsDir,
    connectorsLabel: `${path.relative(cwd, connectorsDir) || '.'}/`,
  });
  if (fileErrors.length || problems.length) throw configError(fileErrors, at, 'RQ1003', problems);

  // Then environment overrides, validated again with the variable named as the culprit.
  const merged = structuredClone(raw);
  const fromEnv = new Map<string, string>();
  for (const [name, keyPath] of Object.entries(ENV_OVERRIDES)) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    const keys = keyPath.split('.');
    let obj = merged as Record<string, unknown>;
    for (const k of keys.slice(0, -1)) {
      obj[k] ??= {};
      obj = obj[k] as Record<string, unknown>;
    }
    const leaf = keys[keys.length - 1] as string;
    obj[leaf] =
      /^\d+$/.test(v) && keyPath.endsWith('_max')
        ? Number(v)
        : /^\d+$/.test(v) && keyPath.endsWith('_ms')
          ? Number(v)
          : v;
    fromEnv.set(keyPath, name);
  }
  const envErrors = validate(merged);
  if (envErrors.length) {
    throw configError(
      envErrors,
      (p, which) => {
        const key = p.join('.');
        const v = fromEnv.get(key);
        return v ? `environment variable ${v}` : `${rel}:${fmtPos(src.positionOf(p, which))}`;
      },
      'RQ1005',
    );
  }

  const c = merged as any;
  const orgIds = new Set<string>();
  const organizations: OrganizationConfig[] = (c.organizations as any[]).map((o, i) => {
    if (orgIds.has(o.id)) {
      throw new RoutiqError('RQ1003', `organizations[${i}].id "${o.id}" is used twice`, {
        where: `${rel}:${fmtPos(src.positionOf(['organizations', i, 'id']))}`,
      });
    }
    orgIds.add(o.id);
    const names = new Set<string>();
    const connections: ConnectionConfig[] = (o.connections as any[]).map((cn, j) => {
      const name = cn.name ?? cn.connector;
      if (names.has(name)) {
        throw new RoutiqError(
          'RQ1003',
          `organizations[${i}].connections[${j}]: connection name "${name}" is used twice; set a distinct name`,
          {
            where: `${rel}:${fmtPos(src.positionOf(['organizations', i, 'connections', j]))}`,
          },
        );
      }
      names.add(name);
      const bad = typeof cn.schedule === 'string' ? validateCron(cn.schedule) : undefined;
      if (bad)
        throw new RoutiqError('RQ1003', `schedule "${cn.schedule}" is not a cron expression: ${bad}`, {
          where: `${rel}:${fmtPos(src.positionOf(['organizations', i, 'connections', j, 'schedule'], 'value'))}`,
        });
      return {
        connector: cn.connector,
        name,
        enabled: cn.enabled,
        config: cn.config,
        secrets: cn.secrets,
        ...(cn.credential_store ? { credentialStore: true } : {}),
        allowInsecureHttp: cn.allow_insecure_http,
        ...(cn.min_tls_version ? { minTlsVersion: cn.min_tls_version } : {}),
        ...(cn.streams ? { streams: cn.streams } : {}),
        ...(cn.schedule ? { schedule: cn.schedule } : {}),
      };
    });
    const alerts = o.alerts
      ? alertsConfig(o.alerts, `${rel}:${fmtPos(src.positionOf(['organizations', i, 'alerts']))}`)
      : undefined;
    return {
      id: o.id,
      name: o.name,
      defaultCountry: o.default_country,
      timezone: o.timezone,
      settings: o.settings,
      connections,
      ...(alerts ? { alerts } : {}),
    };
  });

  const d = c.database ?? {};
  if (typeof d.url === 'string' && !fromEnv.has('database.url')) {
    d.url = resolveUrlReferences(d.url, env, at(['database', 'url'], 'value'));
  }
  const l = c.log ?? {};
  const h = c.http ?? {};
  const r = c.runner ?? {};
  const sv = c.service ?? {};
  const rt = c.retention ?? {};
  return {
    file: rel,
    env: envName,
    database: {
      ...(d.url ? { url: d.url as string } : {}),
      embeddedDir: d.embedded_dir ?? '.routiq/db',
      poolMax: d.pool_max ?? 10,
      schema: d.schema ?? 'public',
      rolePrefix: d.role_prefix ?? 'routiq',
      tls: {
        ...(d.tls?.mode ? { mode: d.tls.mode } : {}),
        ...(d.tls?.ca_file
          ? { ca: readCaFile(path.resolve(cwd, d.tls.ca_file), at(['database', 'tls', 'ca_file'], 'value')) }
          : {}),
      },
    },
    retention: {
      deadLetterDays: rt.dead_letter_days ?? 30,
      ...(rt.open_dead_letter_days ? { openDeadLetterDays: rt.open_dead_letter_days } : {}),
      pushedRecordDays: rt.pushed_record_days ?? 30,
      webhookInboxDays: rt.webhook_inbox_days ?? 7,
    },
    log: { level: l.level ?? 'info' },
    http: { timeoutMs: h.timeout_ms ?? 30000, minTlsVersion: h.min_tls_version ?? 'TLSv1.3' },
    runner: {
      batchSize: r.batch_size ?? 500,
      concurrency: r.concurrency ?? 4,
      heartbeatSeconds: r.heartbeat_seconds ?? 10,
      staleAfterSeconds: r.stale_after_seconds ?? 60,
      deadlineSeconds: r.deadline_seconds ?? 3600,
      maxRetries: r.max_retries ?? 50,
      retryWindowSeconds: r.retry_window_seconds ?? 1200,
      sharedRateLimits: r.shared_rate_limits ?? true,
      breakerThreshold: r.breaker_threshold ?? 3,
      breakerCooldownSeconds: r.breaker_cooldown_seconds ?? 300,
      rawRetentionDays: r.raw_retention_days ?? 30,
    },
    service: {
      host: sv.host ?? '0.0.0.0',
      port: sv.port ?? 8080,
      concurrency: sv.concurrency ?? 2,
      intervalMinutes: sv.interval_minutes ?? 5,
      bodyLimitBytes: sv.body_limit_bytes ?? 1048576,
      drainSeconds: sv.drain_seconds ?? 15,
      shutdownTimeoutSeconds: sv.shutdown_timeout_seconds ?? 25,
      webhookConcurrency: sv.webhook_concurrency ?? 2,
      webhookStaleSeconds: sv.webhook_stale_seconds ?? 60,
      webhookMaxAttempts: sv.webhook_max_attempts ?? 5,
      pollingIntervalSeconds: sv.polling_interval_seconds ?? 1,
      ...(sv.auth
        ? {
            auth: {
              jwksUrl: sv.auth.jwks_url,
              issuer: sv.auth.issuer,
              ...(sv.auth.audience ? { audience: sv.auth.audience } : {}),
              authorizedParties: sv.auth.authorized_parties ?? [],
              organizationClaim: sv.auth.organization_claim ?? 'org_id',
              clockToleranceSeconds: sv.auth.clock_tolerance_seconds ?? 5,
            },
          }
        : {}),
    },
    connectorsDir: path.resolve(cwd, c.connectors_dir ?? 'connectors'),
    organizations,
  };
}

const ALL_RULES: AlertRule[] = [
  'auth_failure',
  'circuit_paused',
  'lag',
  'dlq_growth',
  'run_failures',
  'webhook_signature',
];

/** An organization's `alerts:` block (schema-validated already): at least one channel, defaults filled in. */
function alertsConfig(a: any, where: string): AlertsConfig {
  if (!a.slack_webhook_url && !a.email)
    throw new RoutiqError('RQ1003', 'alerts needs a channel: slack_webhook_url, email, or both', { where });
  return {
    ...(a.slack_webhook_url ? { slackWebhookUrl: a.slack_webhook_url } : {}),
    ...(a.email ? { email: { smtpUrl: a.email.smtp_url, from: a.email.from, to: a.email.to } } : {}),
    rules: a.rules ?? ALL_RULES,
    lagMinutes: a.lag_minutes ?? 60,
    dlqGrowth: a.dlq_growth ?? 10,
    runFailures: a.run_failures ?? 3,
    webhookRejections: a.webhook_rejections ?? 5,
    windowMinutes: a.window_minutes ?? 60,
  };
}

function readCaFile(file: string, where: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new RoutiqError('RQ1003', `database.tls.ca_file ${file} cannot be read: ${(err as Error).message}`, {
      where,
    });
  }
}

/** Resolve a connection's ${ENV} secret references. Missing variables are an error naming the variable. */
export function resolveSecrets(
  conn: ConnectionConfig,
  orgId: string,
  env: NodeJS.ProcessEnv = process.env,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, ref] of Object.entries(conn.secrets)) {
    const name = ref.slice(2, -1);
    const why = notASecretVariable(name);
    if (why) {
      throw new RoutiqError(
        'RQ1003',
        `secret "${k}" of connection ${orgId}/${conn.name} references \${${name}}: ${why}`,
        {
          where: name,
        },
      );
    }
    const v = env[name];
    if (v === undefined || v === '') {
      throw new RoutiqError(
        'RQ1004',
        `secret "${k}" of connection ${orgId}/${conn.name} references \${${name}}, which is not set`,
        { where: name },
      );
    }
    out[k] = v;
  }
  return out;
}

/** Sort key of `file:line:col` (a variable name sorts first). */
function linePos(at: string): number {
  const m = /:(\d+):(\d+)$/.exec(at);
  return m ? Number(m[1]) * 100_000 + Number(m[2]) : 0;
}

function fmtPos(p: { line: number; col: number }): string {
  return `${p.line}:${p.col}`;
}

/**
 * `${VAR}` references in database.url (the password, typically) are filled from the environment, percent-encoded
 * so a password with `@` or `/` cannot change the URL's shape.
 */
function resolveUrlReferences(url: string, env: NodeJS.ProcessEnv, where: string): string {
  return url.replace(/\$\{([A-Z_][A-Z0-9_]*)\}/g, (_m, name: string) => {
    const v = env[name];
    if (v === undefined || v === '') {
      throw new RoutiqError('RQ1004', `database.url references \${${name}}, which is not set`, { where });
    }
    return encodeURIComponent(v);
  });
}

function configError(
  errors: ErrorObject[],
  where: (p: string[], which: 'key' | 'value') => string,
  code: 'RQ1003' | 'RQ1005' = 'RQ1003',
  problems: ConfigProblem[] = [],
): RoutiqError {
  const schemaLines = errors
    .filter((e) => e.keyword !== 'if')
    .map((e) => {
      const p = e.instancePath.split('/').slice(1).map(decodeURIComponent);
      let key = p.join('.') || '(root)';
      let msg = e.message ?? 'is invalid';
      let which: 'key' | 'value' = 'value';
      if (e.keyword === 'additionalProperties') {
        const extra = String((e.params as { additionalProperty: string }).additionalProperty);
        p.push(extra);
        key = p.join('.');
        msg = 'is not a known key';
        which = 'key';
      } else if (e.keyword === 'enum') {
        msg = `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
      } else if (e.keyword === 'required') {
        key = [...p, (e.params as { missingProperty: string }).missingProperty].join('.');
        msg = 'is required';
      }
      return { at: where(p, which), text: `${key} ${msg}`, code: code as string };
    });
  const lines = [
    ...schemaLines,
    ...problems.map((pr) => ({ at: where(pr.path.map(String), pr.at), text: pr.message, code: pr.code as string })),
  ].sort((a, b) => linePos(a.at) - linePos(b.at));
  // One error for the whole file; its code is the first problem's (all are RQ1xxx, exit code 3).
  const first = lines[0]?.code as 'RQ1003' | 'RQ1005' | 'RQ1006' | 'RQ1007' | undefined;
  return new RoutiqError(first ?? code, lines.map((l) => `${l.at}: ${l.text}`).join('\n'), {
    details: { errors: lines.map(({ at, text }) => ({ at, text })) },
  });
}

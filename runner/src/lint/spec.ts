/**
 * `lintSpecText`: YAML syntax → JSON Schema (every error, at its node) → semantic rules (expressions compile,
 * bindings exist, settings are declared, no literal credentials, stream graph, hooks, mappings fit their
 * unified target, sync-efficiency warnings). Every finding is collected; nothing stops at the first.
 */
import path from 'node:path';
import { UNIFIED_TARGETS, type UnifiedTarget, unifiedSchema } from '@routiq/schemas';
// Importing the SDK registers its built-in hooks (identity.match, …) in the registry listHooks() reads.
import { listHooks } from '@routiq/sdk';
import type { LintCode } from '../errors/lint-codes.ts';
import { type BindingArea, bindingInfo } from '../spec/bindings.ts';
import { declaredHooks } from '../spec/hooks-file.ts';
import {
  type AstNode,
  compile,
  containsChain,
  FORBIDDEN_FUNCTIONS,
  fieldChains,
  freeVariables,
  KNOWN_BINDINGS,
  literalValues,
  nodeStart,
  type ObjectProducer,
  parseTemplate,
  producedObjects,
  SPEC_FUNCTIONS,
  templateLiterals,
} from './expr.ts';
import { type Finding, Findings, normalizeFindings, show } from './finding.ts';
import { type ExprSite, exprSites, prepared, type Schema, validateAgainst } from './schema.ts';
import { type SchemaCodes, schemaFindings } from './schema-findings.ts';
import { formatPath, type Path, SourceFile } from './source.ts';
import { didYouMean, suggestion } from './suggest.ts';
import { yamlFindings } from './yaml-findings.ts';

export interface HookInfo {
  name: string;
  kind: string;
}

export interface LintSpecOptions {
  /** Registered hooks (default: the @routiq/sdk registry as it is now). */
  hooks?: readonly HookInfo[];
}

const SPEC_CODES: SchemaCodes = {
  unknownKey: 'RQ2010',
  missingKey: 'RQ2011',
  wrongType: 'RQ2012',
  badEnum: 'RQ2013',
  unknownVariant: 'RQ2014',
  invalidValue: 'RQ2015',
};

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => !!v && typeof v === 'object' && !Array.isArray(v);
const asObj = (v: unknown): Obj => (isObj(v) ? v : {});
const asArr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const asStr = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

export function lintSpecText(text: string, file: string, opts: LintSpecOptions = {}): Finding[] {
  const out = new Findings(file);
  const src = new SourceFile(text, file);
  if (yamlFindings(src, out, { syntax: 'RQ2001', duplicateKey: 'RQ2002' })) return normalizeFindings(out.list);
  const data = src.value;
  if (!isObj(data)) {
    out.lint(
      'RQ2003',
      src.keyPos([]),
      [],
      data == null ? 'the file is empty' : 'the top level must be a mapping of keys (spec_version, name, …)',
    );
    return normalizeFindings(out.list);
  }
  const { schema } = prepared('connector.schema.json');
  schemaFindings(validateAgainst('connector.schema.json', data), schema, data, src, out, SPEC_CODES);
  // Hooks a connector folder ships (connectors/<name>/hooks.ts) are known by reading that file.
  const local = opts.hooks ? [] : declaredHooks(path.dirname(path.resolve(file)));
  new SpecRules(src, data, schema, out, opts.hooks ?? [...listHooks(), ...local]).run();
  return normalizeFindings(out.list);
}

type Area = BindingArea;

interface SiteInfo {
  site: ExprSite;
  area: Area;
  stream: number | undefined;
  /** Compiled ASTs with the offset of each in the string (one for JSONata, one per part for templates). */
  asts: Array<{ ast: AstNode; offset: number }>;
  ok: boolean;
  /** Known bindings it reads. */
  refs: Set<string>;
  /** It reads an unknown binding (already reported; other checks on it would only repeat that). */
  unknownBinding: boolean;
}

const CREDENTIAL_NAME =
  /^(authorization|proxy-authorization|cookie)$|(^|[-_])(token|secret|password|passwd|api[-_]?key|apikey|access[-_]?key|private[-_]?key)$/i;

const CREDENTIAL_VALUE: Array<{ re: RegExp; what: string }> = [
  { re: /eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/, what: 'a JWT' },
  { re: /\b(Bearer|Basic|Token)\s+[A-Za-z0-9+/._~=-]{12,}/i, what: 'an Authorization value' },
  { re: /\b[0-9a-fA-F]{32,}\b/, what: 'a long hex key' },
  { re: /[A-Za-z0-9+/_-]{32,}={0,2}/, what: 'a long base64 key' },
];

function looksLikeCredential(s: string): { index: number; what: string } | undefined {
  for (const { re, what } of CREDENTIAL_VALUE) {
    const m = re.exec(s);
    if (!m) continue;
    // Long base64-looking runs must mix upper, lower and digits (not a word like a path or a name).
    if (what === 'a long base64 key' && !(/[a-z]/.test(m[0]) && /[A-Z]/.test(m[0]) && /\d/.test(m[0]))) continue;
    return { index: m.index, what };
  }
  return undefined;
}

const AUTH_CREDENTIAL_FIELDS: Record<string, string[]> = {
  api_key: ['value'],
  bearer: ['token'],
  basic: ['username', 'password'],
  oauth2_client_credentials: ['client_secret'],
  oauth2_refresh_token: ['client_secret', 'refresh_token'],
};

class SpecRules {
  private readonly sites = new Map<string, SiteInfo>();
  private readonly streams: Obj[];
  private readonly props: Obj;

  constructor(
    private readonly src: SourceFile,
    private readonly data: Obj,
    private readonly schema: Schema,
    private readonly out: Findings,
    private readonly hooks: readonly HookInfo[],
  ) {
    this.streams = asArr(data.streams).map(asObj);
    this.props = asObj(asObj(data.connection).properties);
  }

  run(): void {
    this.connection();
    for (const site of exprSites(this.schema, this.data)) this.expression(site);
    this.credentials();
    this.streamGraph();
    this.streamHooks();
    this.streamWarnings();
    this.mappings();
    this.regexes();
  }

  private lint(code: LintCode, pos: { line: number; col: number }, path: Path, message: string): void {
    this.out.lint(code, pos, path, message);
  }

  private site(path: Path): SiteInfo | undefined {
    return this.sites.get(formatPath(path));
  }

  // ---- connection settings -------------------------------------------------------------------------------

  private isSecret(name: string): boolean {
    return asObj(this.props[name]).secret === true;
  }

  private connection(): void {
    asArr(asObj(this.data.connection).required).forEach((name, i) => {
      if (typeof name === 'string' && !(name in this.props)) {
        const path = ['connection', 'required', i];
        this.lint(
          'RQ2034',
          this.src.valuePos(path),
          path,
          `connection.required names ${show(name)}, which connection.properties does not declare${suggestion(name, Object.keys(this.props))}`,
        );
      }
    });
  }

  // ---- expressions -----------------------------------------------------------------------------------------

  private areaOf(path: Path): { area: Area; stream: number | undefined } {
    const [a, b, c, d, e] = path;
    if (a === 'streams' && typeof b === 'number') {
      if (c === 'map') return { area: e === 'expression' || e === 'when' ? 'mapping' : 'data', stream: b };
      if (c === 'request') return { area: 'request', stream: b };
      if (c === 'pagination') return { area: 'pagination', stream: b };
      if (c === 'incremental')
        return { area: d === 'cursor_field' ? 'data' : d === 'start' ? 'incremental_start' : 'incremental', stream: b };
      if (c === 'parent' && d === 'key') return { area: 'parent_key', stream: b };
      return { area: 'data', stream: b };
    }
    if (a === 'webhooks') {
      if (b === 'verify') return { area: 'webhook_verify', stream: undefined };
      if (b === 'events' && d === 'map') return { area: 'webhook_mapping', stream: undefined };
      return { area: 'webhook_data', stream: undefined };
    }
    if (a === 'errors') return { area: 'errors', stream: undefined };
    if (a === 'base_url' || a === 'rate_limits') return { area: 'connection', stream: undefined };
    // The connector-wide `request` and `auth`.
    return { area: 'connector_request', stream: undefined };
  }

  private expression(site: ExprSite): void {
    const { area, stream } = this.areaOf(site.path);
    const info: SiteInfo = { site, area, stream, asts: [], ok: true, refs: new Set(), unknownBinding: false };
    this.sites.set(formatPath(site.path), info);
    const label = formatPath(site.path);
    if (site.kind === 'jsonata') {
      const r = compile(site.value);
      if (r.error) {
        info.ok = false;
        const hint = site.value.includes('{{')
          ? ' (this field is a JSONata expression, not a template: drop the {{ }})'
          : /^Expected "[}\])]", got/.test(r.error.message)
            ? ' (a missing comma before it?)'
            : '';
        this.lint(
          'RQ2020',
          this.src.posInString(site.path, r.error.offset),
          site.path,
          `${label}: JSONata does not compile: ${r.error.message}${hint}`,
        );
        return;
      }
      info.asts.push({ ast: r.ast, offset: 0 });
    } else {
      const t = parseTemplate(site.value);
      if (t.error) {
        info.ok = false;
        this.lint('RQ2021', this.src.posInString(site.path, t.error.offset), site.path, `${label}: ${t.error.message}`);
      }
      for (const part of t.parts) {
        if (!part.expr) {
          info.ok = false;
          this.lint(
            'RQ2021',
            this.src.posInString(site.path, part.offset),
            site.path,
            `${label}: empty template part "{{ }}"`,
          );
          continue;
        }
        const r = compile(part.expr);
        if (r.error) {
          info.ok = false;
          this.lint(
            'RQ2021',
            this.src.posInString(site.path, part.offset + r.error.offset),
            site.path,
            `${label}: template part {{ ${part.expr} }} does not compile: ${r.error.message}`,
          );
          continue;
        }
        info.asts.push({ ast: r.ast, offset: part.offset });
      }
    }
    for (const { ast, offset } of info.asts) this.bindings(info, ast, offset);
  }

  private bindings(info: SiteInfo, ast: AstNode, base: number): void {
    const { site, area, stream } = info;
    const known = new Set<string>(KNOWN_BINDINGS);
    for (const use of freeVariables(ast)) {
      const pos = this.src.posInString(site.path, base + use.offset);
      const v = `$${use.name}`;
      const forbidden = FORBIDDEN_FUNCTIONS.get(use.name);
      if (forbidden) {
        this.lint('RQ2026', pos, site.path, forbidden);
        continue;
      }
      if (SPEC_FUNCTIONS.has(use.name) && (use.call || !known.has(use.name))) continue;
      if (!known.has(use.name)) {
        info.unknownBinding = true;
        if (use.call) {
          const s = didYouMean(use.name, SPEC_FUNCTIONS);
          this.lint('RQ2022', pos, site.path, `unknown function ${v}()${s ? `; did you mean $${s}()?` : ''}`);
        } else {
          const s = didYouMean(use.name, known);
          this.lint(
            'RQ2022',
            pos,
            site.path,
            `unknown binding ${v}${s ? `; did you mean $${s}?` : `; bindings are ${KNOWN_BINDINGS.map((b) => `$${b}`).join(', ')}`}`,
          );
        }
        continue;
      }
      info.refs.add(use.name);
      this.scope(use.name, area, stream, pos, site.path);
      if (use.name === 'secrets' && use.field !== undefined) this.secretRef(use.field, pos, site.path);
      if (use.name === 'config' && use.field !== undefined) this.configRef(use.field, pos, site.path);
    }
  }

  private scope(
    name: string,
    area: Area,
    stream: number | undefined,
    pos: { line: number; col: number },
    path: Path,
  ): void {
    const s = stream === undefined ? undefined : this.streams[stream];
    const v = `$${name}`;
    const info = bindingInfo(name);
    if (!info) return;
    if (!info.areas.includes(area)) {
      if (name === 'secrets') {
        this.lint(
          'RQ2025',
          pos,
          path,
          `$secrets in ${formatPath(path)} would copy a secret into stored rows or logs; use secrets only in requests and webhook verification`,
        );
      } else if (area === 'parent_key' && name === 'parent') {
        this.lint(
          'RQ2023',
          pos,
          path,
          "$parent is never bound in parent.key: it is evaluated on the parent stream's record ($ is that record); read the record's fields (e.g. `id`)",
        );
      } else if (area === 'connector_request' && info.requires) {
        this.lint(
          info.requires === 'child_stream' ? 'RQ2024' : 'RQ2023',
          pos,
          path,
          `${v} is never bound in the connector-wide request and auth: they apply to every stream, and only ${info.requires === 'child_stream' ? 'child streams have a parent' : 'incremental streams have a cursor'}; use it in a stream's own request${info.requires === 'incremental_stream' ? ' or incremental.send' : ''}`,
        );
      } else if (name === 'parent' && !s?.parent) {
        this.lint(
          'RQ2024',
          pos,
          path,
          `$parent is not bound here: ${s ? `stream ${show(s.name)} has no parent` : 'only child streams have a parent'}`,
        );
      } else {
        this.lint('RQ2023', pos, path, `${v} is never bound here (it is bound only in ${areaList(info.areas)})`);
      }
      return;
    }
    switch (info.requires) {
      case 'child_stream':
        if (!s?.parent) {
          const where = s ? `stream ${show(s.name)} has no parent` : 'only child streams have a parent';
          this.lint('RQ2024', pos, path, `$parent is not bound here: ${where}`);
        }
        return;
      case 'incremental_stream':
        if (!s?.incremental) {
          const why = s
            ? `stream ${show(s.name)} has no incremental`
            : 'it is bound only in the requests of incremental streams';
          this.lint('RQ2023', pos, path, `${v} is never bound here (${why})`);
        }
        return;
      default:
        return;
    }
  }

  private secretRef(name: string, pos: { line: number; col: number }, path: Path): void {
    if (!(name in this.props)) {
      const secrets = Object.keys(this.props).filter((k) => this.isSecret(k));
      this.lint(
        'RQ2030',
        pos,
        path,
        `$secrets.${name} is not declared in connection.properties${alternatives('$secrets.', name, secrets, 'secret settings')}`,
      );
    } else if (!this.isSecret(name)) {
      this.lint(
        'RQ2031',
        pos,
        path,
        `$secrets.${name}: connection property ${show(name)} is not declared secret: true (read it as $config.${name}, or mark it secret)`,
      );
    }
  }

  private configRef(name: string, pos: { line: number; col: number }, path: Path): void {
    if (!(name in this.props)) {
      const config = Object.keys(this.props).filter((k) => !this.isSecret(k));
      this.lint(
        'RQ2033',
        pos,
        path,
        `$config.${name} is not declared in connection.properties${alternatives('$config.', name, config, 'settings')}`,
      );
    } else if (this.isSecret(name)) {
      this.lint(
        'RQ2032',
        pos,
        path,
        `$config.${name} is a secret: read it as $secrets.${name} (secrets come from environment variables, never from the config file)`,
      );
    }
  }

  // ---- credentials -----------------------------------------------------------------------------------------

  private credentials(): void {
    const auth = asObj(this.data.auth);
    const fields = AUTH_CREDENTIAL_FIELDS[String(auth.type)] ?? [];
    for (const field of fields) {
      const value = auth[field];
      if (typeof value !== 'string' || (value === '' && field === 'password')) continue;
      const info = this.site(['auth', field]);
      if (!info?.ok || info.unknownBinding) continue;
      if (!info.refs.has('secrets') && !info.refs.has('config')) {
        this.lint(
          'RQ2040',
          this.src.valuePos(['auth', field]),
          ['auth', field],
          `auth.${field} is a literal credential; reference a secret setting, e.g. "{{ $secrets.api_token }}"`,
        );
      }
    }

    for (const info of this.sites.values()) {
      const path = info.site.path;
      const name = headerOrParamName(path);
      if (name === undefined || !info.ok || info.unknownBinding) continue;
      const label = formatPath(path);
      if (
        CREDENTIAL_NAME.test(name) &&
        info.site.value.trim() !== '' &&
        !info.refs.has('secrets') &&
        !info.refs.has('config')
      ) {
        this.lint(
          'RQ2040',
          this.src.valuePos(path),
          path,
          `${label} looks like a credential (${show(name)}) but is a literal; reference a secret setting, e.g. "{{ $secrets.api_token }}"`,
        );
        continue;
      }
      for (const lit of templateLiterals(info.site.value)) {
        const hit = looksLikeCredential(lit.text);
        if (hit) {
          this.lint(
            'RQ2040',
            this.src.posInString(path, lit.offset + hit.index),
            path,
            `${label} contains ${hit.what} written literally; move it to a secret setting and reference it with $secrets`,
          );
          break;
        }
      }
    }

    const verify = asObj(asObj(this.data.webhooks).verify);
    const field = verify.type === 'hmac_sha256' ? 'secret' : verify.type === 'shared_token' ? 'token' : undefined;
    if (field && typeof verify[field] === 'string') {
      const path = ['webhooks', 'verify', field];
      const info = this.site(path);
      if (info?.ok && !info.unknownBinding && !info.refs.has('secrets')) {
        const how = info.refs.has('config') ? 'comes from $config (the config file)' : 'is a literal';
        this.lint(
          'RQ2041',
          this.src.valuePos(path),
          path,
          `webhooks.verify.${field} ${how}; it must reference a secret, e.g. "{{ $secrets.webhook_secret }}"`,
        );
      }
    }
  }

  // ---- streams ---------------------------------------------------------------------------------------------

  private streamGraph(): void {
    const first = new Map<string, number>();
    this.streams.forEach((s, i) => {
      const name = asStr(s.name);
      if (name === undefined) return;
      const prev = first.get(name);
      if (prev === undefined) first.set(name, i);
      else {
        const line = this.src.valuePos(['streams', prev, 'name']).line;
        this.lint(
          'RQ2052',
          this.src.valuePos(['streams', i, 'name']),
          ['streams', i, 'name'],
          `stream name ${show(name)} is already used by streams[${prev}] (line ${line})`,
        );
      }
    });
    const parentOf = new Map<number, number>();
    const events = asArr(asObj(this.data.webhooks).events)
      .map((e) => asObj(e).name)
      .filter((n): n is string => typeof n === 'string');
    this.streams.forEach((s, i) => {
      const hook = asStr(asObj(s.parent).webhook);
      if (hook !== undefined && !events.includes(hook)) {
        const path = ['streams', i, 'parent', 'webhook'];
        const list = events.length
          ? suggestion(hook, events) || `; webhook events are ${events.join(', ')}`
          : '; the spec has no webhooks.events';
        this.lint('RQ2050', this.src.valuePos(path), path, `parent webhook event ${show(hook)} does not exist${list}`);
      }
      const p = asStr(asObj(s.parent).stream);
      if (p === undefined) return;
      const path = ['streams', i, 'parent', 'stream'];
      const idx = first.get(p);
      if (idx === undefined) {
        const others = [...first.keys()].filter((n) => n !== s.name);
        this.lint(
          'RQ2050',
          this.src.valuePos(path),
          path,
          `parent stream ${show(p)} does not exist${suggestion(p, others) || (others.length ? `; streams are ${others.join(', ')}` : '')}`,
        );
      } else parentOf.set(i, idx);
    });
    const reported = new Set<number>();
    for (const start of parentOf.keys()) {
      const chain: number[] = [];
      let cur: number | undefined = start;
      while (cur !== undefined && !chain.includes(cur)) {
        chain.push(cur);
        cur = parentOf.get(cur);
      }
      if (cur === undefined) continue;
      const cycle = chain.slice(chain.indexOf(cur));
      if (cycle.some((c) => reported.has(c))) continue;
      for (const c of cycle) reported.add(c);
      const at = Math.min(...cycle);
      const names = [...cycle.slice(cycle.indexOf(at)), ...cycle.slice(0, cycle.indexOf(at)), at].map((c) =>
        String(this.streams[c]?.name),
      );
      const path = ['streams', at, 'parent', 'stream'];
      const msg =
        cycle.length === 1
          ? `stream ${show(names[0])} is its own parent`
          : `parent cycle: ${names.join(' → ')} (each stream's parent.stream leads back to itself)`;
      this.lint('RQ2051', this.src.valuePos(path), path, msg);
    }
  }

  private hook(name: unknown, kind: string, path: Path): void {
    if (typeof name !== 'string') return;
    const entry = this.hooks.find((h) => h.name === name);
    if (!entry) {
      const same = this.hooks.filter((h) => h.kind === kind).map((h) => h.name);
      const registered = same.length
        ? `; registered ${kind} hooks: ${same.join(', ')}`
        : `; no ${kind} hooks are registered`;
      this.lint(
        'RQ2053',
        this.src.valuePos(path),
        path,
        `hook ${show(name)} is not registered in @routiq/sdk nor declared in the connector's hooks.ts${suggestion(name, same) || registered}`,
      );
    } else if (entry.kind !== kind) {
      this.lint(
        'RQ2054',
        this.src.valuePos(path),
        path,
        `hook ${show(name)} is registered as a ${entry.kind} hook, not ${kind}`,
      );
    }
  }

  private deletions(s: Record<string, unknown>, i: number, isChild: boolean): void {
    const path = ['streams', i, 'deletions'];
    if (isChild) {
      this.lint(
        'RQ2075',
        this.src.keyPos(path),
        path,
        `stream ${show(s.name)} is a child stream: deletions are detected on top-level streams only`,
      );
      return;
    }
    const written = new Set(
      (Array.isArray(s.map) ? s.map : []).map((m) => (isObj(m) ? m.target : undefined)).filter(Boolean),
    );
    const targets = asObj(s.deletions).targets;
    if (!Array.isArray(targets)) return;
    targets.forEach((t, k) => {
      if (written.has(t)) return;
      const at = [...path, 'targets', k];
      this.lint(
        'RQ2075',
        this.src.valuePos(at),
        at,
        `stream ${show(s.name)}: deletions target ${show(t)} is not written by any of its mappings`,
      );
    });
  }

  private streamHooks(): void {
    this.streams.forEach((s, i) => {
      for (const [kind, name] of Object.entries(asObj(s.hooks))) this.hook(name, kind, ['streams', i, 'hooks', kind]);
    });
    this.hook(asObj(this.data.identity).match_identity, 'match_identity', ['identity', 'match_identity']);
  }

  private sitesUnder(prefix: Path): SiteInfo[] {
    return [...this.sites.values()].filter((s) => prefix.every((seg, i) => s.site.path[i] === seg));
  }

  private streamWarnings(): void {
    this.streams.forEach((s, i) => {
      const name = show(s.name);
      const inc = isObj(s.incremental) ? s.incremental : undefined;
      const parent = isObj(s.parent) ? s.parent : undefined;
      const pag = asObj(s.pagination);
      if (!inc && !(parent && parent.only_changed !== false)) {
        this.lint(
          'RQ2070',
          this.src.keyPos(['streams', i]),
          ['streams', i],
          `stream ${name} has no incremental: every run re-reads all of it`,
        );
      }
      // A token API can hand out tokens forever (new token, same or empty data); page/offset/next-link streams
      // end on a short or empty page or a missing link, and the engine stops on a repeated page.
      if (pag.type === 'cursor' && pag.max_pages === undefined && !isObj(pag.stop)) {
        const path = ['streams', i, 'pagination', 'type'];
        this.lint(
          'RQ2071',
          this.src.valuePos(path),
          path,
          `stream ${name}: cursor pagination has neither max_pages nor stop.when; an API that keeps returning tokens is paged up to the engine's cap of 100000 pages`,
        );
      }
      if (inc) {
        const send = isObj(inc.send) ? inc.send : undefined;
        // id_window pagination sends the cursor itself (after=<largest id>).
        if (!send && inc.stop_when_older !== true && inc.client_filter !== true && pag.type !== 'id_window') {
          this.lint(
            'RQ2072',
            this.src.keyPos(['streams', i, 'incremental']),
            ['streams', i, 'incremental'],
            `stream ${name}: the cursor is never sent (incremental.send), nor used to stop (stop_when_older) or filter (client_filter), so every run still reads everything`,
          );
        }
        if (send) {
          const sites = this.sitesUnder(['streams', i, 'incremental', 'send']);
          const usesCursor = sites.some(
            (x) => x.refs.has('cursor') || x.refs.has('cursor_iso') || x.refs.has('cursor_unix'),
          );
          if (!usesCursor && sites.every((x) => x.ok && !x.unknownBinding)) {
            const path = ['streams', i, 'incremental', 'send'];
            this.lint(
              'RQ2073',
              this.src.keyPos(path),
              path,
              `stream ${name}: incremental.send never uses $cursor, $cursor_iso or $cursor_unix`,
            );
          }
        }
      }
      if (isObj(s.deletions)) this.deletions(s, i, parent !== undefined);
      const parentExists =
        (typeof parent?.stream === 'string' && this.streams.some((o) => o.name === parent.stream)) ||
        typeof parent?.webhook === 'string';
      if (parent && parentExists) {
        const sites = this.sitesUnder(['streams', i, 'request']);
        const usesParent = sites.some((x) => x.refs.has('parent'));
        if (!usesParent && sites.every((x) => x.ok && !x.unknownBinding)) {
          const path = ['streams', i, 'request'];
          const of =
            typeof parent.stream === 'string'
              ? `stream ${show(parent.stream)}`
              : `webhook event ${show(parent.webhook)}`;
          this.lint(
            'RQ2074',
            this.src.keyPos(path),
            path,
            `stream ${name} is a child of ${of} but its request never uses $parent, so every parent sends the same request`,
          );
        }
      }
    });
  }

  // ---- mappings --------------------------------------------------------------------------------------------

  private mappings(): void {
    for (const [i, s] of this.streams.entries()) {
      for (const [j, m] of asArr(s.map).entries()) this.mapping(asObj(m), ['streams', i, 'map', j]);
      this.cursorMapped(s, i);
    }
    for (const [k, ev] of asArr(asObj(this.data.webhooks).events).entries()) {
      for (const [j, m] of asArr(asObj(ev).map).entries()) this.mapping(asObj(m), ['webhooks', 'events', k, 'map', j]);
    }
  }

  private mapping(m: Obj, base: Path): void {
    const target = m.target;
    if (typeof target !== 'string' || !(UNIFIED_TARGETS as readonly string[]).includes(target)) return;
    const exprPath = [...base, 'expression'];
    const info = this.site(exprPath);
    const ast = info?.ok ? info.asts[0]?.ast : undefined;
    if (!ast) return;
    const schema = unifiedSchema(target as UnifiedTarget);
    const naturalKey = ((schema['x-routiq'] as Obj | undefined)?.natural_key as string[] | undefined) ?? [];
    const required =
      m.mode === 'patch'
        ? naturalKey.filter((k) => k !== 'organization_id' && k !== 'source')
        : ((schema.required as string[] | undefined) ?? []);
    const { objects } = producedObjects(ast);
    for (const o of objects)
      this.checkObject(
        o,
        schema,
        required,
        target,
        exprPath,
        m.mode === 'patch' ? ' (patch mappings need the natural key)' : '',
      );
  }

  private checkObject(
    o: ObjectProducer,
    schema: Schema,
    required: readonly string[],
    label: string,
    exprPath: Path,
    requiredNote: string,
  ): void {
    const props = (schema.properties ?? {}) as Record<string, Schema>;
    const names = Object.keys(props);
    const pos = (n: AstNode) => this.src.posInString(exprPath, nodeStart(n));
    const seen = new Set<string>();
    for (const { key, keyNode, value } of o.keys) {
      seen.add(key);
      const prop = props[key];
      if (!prop) {
        if (schema.additionalProperties === false) {
          const hint = suggestion(key, names) || `; ${label} fields are ${names.join(', ')}`;
          this.lint('RQ2060', pos(keyNode), exprPath, `mapping to ${label} writes unknown field ${show(key)}${hint}`);
        }
        continue;
      }
      if (Array.isArray(prop.enum)) {
        for (const lit of literalValues(value) ?? []) {
          if (!prop.enum.includes(lit.value)) {
            const allowed = prop.enum.map((v) => (v === null ? 'null' : String(v)));
            const hint = typeof lit.value === 'string' ? suggestion(lit.value, allowed, '') : '';
            this.lint(
              'RQ2063',
              pos(lit.node),
              exprPath,
              `mapping to ${label}: ${key} ${show(lit.value)} is not one of ${allowed.join(', ')}${hint}`,
            );
          }
        }
      }
      // Nested objects with a closed schema (e.g. patient_identities.cross_refs[]).
      const nested =
        prop.type === 'array' ? (prop.items as Schema | undefined) : prop.type === 'object' ? prop : undefined;
      if (nested?.properties && nested.additionalProperties === false) {
        for (const sub of producedObjects(value).objects) {
          this.checkObject(
            sub,
            nested,
            (nested.required as string[] | undefined) ?? [],
            `${label}.${key}`,
            exprPath,
            '',
          );
        }
      }
    }
    if (!o.open) {
      const missing = required.filter((r) => !seen.has(r));
      if (missing.length) {
        const what = missing.length === 1 ? 'field' : 'fields';
        this.lint(
          'RQ2061',
          pos(o.node),
          exprPath,
          `mapping to ${label} does not write required ${what} ${missing.map((x) => show(x)).join(', ')}${requiredNote}`,
        );
      }
    }
  }

  private cursorMapped(s: Obj, i: number): void {
    const inc = asObj(s.incremental);
    const path = ['streams', i, 'incremental', 'cursor_field'];
    const info = this.site(path);
    const cursorAst = info?.ok ? info.asts[0]?.ast : undefined;
    if (!cursorAst) return;
    const wanted = fieldChains(cursorAst);
    if (!wanted.length) return;
    const maps = asArr(s.map);
    if (!maps.length) return;
    const read: string[][] = [];
    for (let j = 0; j < maps.length; j++) {
      const expr = this.site(['streams', i, 'map', j, 'expression']);
      const input = this.site(['streams', i, 'map', j, 'input']);
      if (!expr?.ok || (input && !input.ok)) return;
      const exprChains = expr.asts[0] ? fieldChains(expr.asts[0].ast) : [];
      const inputChains = input?.asts[0] ? fieldChains(input.asts[0].ast) : [];
      // With `input: meta.sender`, the expression's `id` reads meta.sender.id of the record.
      read.push(
        ...(inputChains.length ? inputChains.flatMap((ic) => exprChains.map((ec) => [...ic, ...ec])) : exprChains),
      );
    }
    if (wanted.some((w) => read.some((r) => containsChain(r, w)))) return;
    const field = String(inc.cursor_field).trim();
    this.lint(
      'RQ2062',
      this.src.valuePos(path),
      path,
      `cursor field ${show(field)} is not mapped: no mapping of stream ${show(s.name)} reads it (map it to a column or into metadata)`,
    );
  }

  // ---- other values ----------------------------------------------------------------------------------------

  private regexes(): void {
    const check = (v: unknown, path: Path): void => {
      if (typeof v !== 'string') return;
      try {
        new RegExp(v, 'u');
      } catch (e) {
        this.lint(
          'RQ2080',
          this.src.valuePos(path),
          path,
          `${formatPath(path)} is not a valid regular expression: ${(e as Error).message}`,
        );
      }
    };
    for (const [name, p] of Object.entries(this.props))
      check(asObj(p).pattern, ['connection', 'properties', name, 'pattern']);
    asArr(asObj(this.data.rate_limits).budgets).forEach((b, i) => {
      check(asObj(asObj(b).match).path, ['rate_limits', 'budgets', i, 'match', 'path']);
    });
  }
}

/** `; did you mean $secrets.api_token?`, or the list of what is declared. */
function alternatives(prefix: string, name: string, candidates: string[], what: string): string {
  const s = didYouMean(name, candidates);
  if (s !== undefined) return `; did you mean ${prefix}${s}?`;
  return candidates.length ? `; declared ${what}: ${candidates.join(', ')}` : `; no ${what} are declared`;
}

/** For a header/param/body template: the header or parameter name it is the value of. */
function headerOrParamName(path: Path): string | undefined {
  for (let i = path.length - 2; i >= 0; i--) {
    if ((path[i] === 'headers' || path[i] === 'params') && typeof path[i + 1] === 'string') {
      return i + 2 === path.length || typeof path[i + 2] === 'number' ? (path[i + 1] as string) : undefined;
    }
  }
  const bodyAt = path.indexOf('body');
  if (bodyAt >= 0 && path[0] === 'streams') {
    const last = [...path].reverse().find((p) => typeof p === 'string');
    return last === 'body' ? '' : last;
  }
  return undefined;
}

const AREA_NAMES: Record<BindingArea, string> = {
  connection: 'base_url and rate_limits',
  request: "a stream's requests",
  connector_request: 'connector-wide request and auth',
  pagination: 'pagination',
  incremental: 'incremental.send',
  incremental_start: 'incremental.start',
  errors: 'error rules',
  data: 'record paths',
  parent_key: 'parent.key',
  mapping: 'stream mappings',
  webhook_verify: 'webhook verification',
  webhook_data: 'webhook events',
  webhook_mapping: 'webhook mappings',
};

function areaList(areas: readonly BindingArea[]): string {
  return areas.map((a) => AREA_NAMES[a]).join(', ');
}

import type { CodeInfo } from './registry.ts';

/**
 * Connector-spec lint codes (RQ2xxx), reported by `routiq lint` (runner/src/lint/). Codes are stable and never
 * reused: retire a code by leaving it here with a title that says so. RQ2000 (spec.load_failed) is a core code.
 * Numbering: 200x YAML, 201x schema, 202x expressions, 203x connection settings, 204x credentials,
 * 205x streams and hooks, 206x mappings, 207x sync-efficiency warnings, 208x other values.
 */
const defs = {
  RQ2001: {
    name: 'spec.yaml_syntax',
    title: 'The file is not valid YAML',
    hint: 'Fix the syntax at the reported line and column (quotes, indentation, brackets); the rest of the file is checked once it parses.',
  },
  RQ2002: {
    name: 'spec.yaml_duplicate_key',
    title: 'A key appears twice in the same mapping',
    hint: 'Remove or rename one of them: YAML would silently keep only the last one.',
  },
  RQ2003: {
    name: 'spec.not_a_mapping',
    title: 'The file is empty or its top level is not a mapping of keys',
    hint: 'A connector spec starts with `spec_version: 1`, `name:`, `version:` … at the top level.',
  },
  RQ2010: {
    name: 'spec.unknown_key',
    title: 'A key is not part of the connector spec language',
    hint: 'Fix the spelling (the message suggests the closest key) or remove it; docs/connector-spec.md lists every key.',
  },
  RQ2011: {
    name: 'spec.missing_key',
    title: 'A required key is missing',
    hint: 'Add the key named in the message; docs/connector-spec.md shows what it holds.',
  },
  RQ2012: {
    name: 'spec.wrong_type',
    title: 'A value has the wrong type',
    hint: 'The message says what was expected and what was found; quote strings that YAML reads as numbers or booleans.',
  },
  RQ2013: {
    name: 'spec.bad_enum',
    title: 'A value is not one of the allowed values',
    hint: 'Use one of the values listed in the message.',
  },
  RQ2014: {
    name: 'spec.unknown_variant',
    title: 'The `type` of a strategy (auth, pagination, webhook verify) is unknown or missing',
    hint: 'Set `type:` to one of the listed strategies; each takes its own keys (docs/connector-spec.md).',
  },
  RQ2015: {
    name: 'spec.invalid_value',
    title: 'A value is out of range, too short or does not match its pattern or format',
    hint: 'Fix the value as the message says.',
  },
  RQ2020: {
    name: 'spec.jsonata_syntax',
    title: 'A JSONata expression does not compile',
    hint: 'Fix the expression at the reported column (try it on https://try.jsonata.org). JSONata fields take a bare expression, without `{{ }}`.',
  },
  RQ2021: {
    name: 'spec.template_syntax',
    title: 'A template has an unclosed `{{`, an empty `{{ }}` or a `{{ }}` part that does not compile',
    hint: 'Each `{{ … }}` part of a template is one JSONata expression; fix it at the reported column.',
  },
  RQ2022: {
    name: 'spec.unknown_binding',
    title: 'An expression uses a `$variable` or `$function` that does not exist',
    hint: 'Bindings are $config, $secrets, $org, $parent, $cursor, $cursor_iso, $cursor_unix, $page, $response, $records, $headers, $body_raw, $connector, $run_started_at, plus JSONata built-in functions and variables bound in the expression.',
  },
  RQ2023: {
    name: 'spec.binding_out_of_scope',
    title: 'A binding is used where the engine does not bind it (it evaluates to nothing there)',
    hint: 'Move the expression to where the binding exists, e.g. $cursor in incremental.send, $response in pagination, $headers/$body_raw in webhooks.verify.',
  },
  RQ2024: {
    name: 'spec.parent_unbound',
    title: '`$parent` is used outside a child stream',
    hint: 'Declare `parent: {stream: …}` on the stream, or stop using $parent there.',
  },
  RQ2025: {
    name: 'spec.secret_in_data',
    title: 'A secret is used in an expression whose result is stored or logged (mapping, records, messages)',
    hint: 'Secrets may only be used in requests (auth, headers, params, base_url) and webhook verification.',
  },
  RQ2026: {
    name: 'spec.eval_forbidden',
    title: '`$eval` is used: it would run data (a payload, a response) as an expression',
    hint: 'Read a JSON string with `$parseJson(str)`; an expression evaluated from data would run with the connection settings in scope, and the engine refuses $eval.',
  },
  RQ2030: {
    name: 'spec.secret_undeclared',
    title: '`$secrets.X` names a setting that connection.properties does not declare',
    hint: 'Declare it under connection.properties with `secret: true`, or fix the name.',
  },
  RQ2031: {
    name: 'spec.secret_not_secret',
    title: '`$secrets.X` names a connection setting that is not declared `secret: true`',
    hint: 'Add `secret: true` to the setting (it then comes from `secrets:` in the config), or read it with $config.X.',
  },
  RQ2032: {
    name: 'spec.config_is_secret',
    title: '`$config.X` names a secret setting',
    hint: 'Read secrets with $secrets.X: they come from environment variables, never from the config file.',
  },
  RQ2033: {
    name: 'spec.config_undeclared',
    title: '`$config.X` names a setting that connection.properties does not declare',
    hint: 'Declare it under connection.properties, or fix the name.',
  },
  RQ2034: {
    name: 'spec.required_undeclared',
    title: 'connection.required names a setting that connection.properties does not declare',
    hint: 'Declare the setting or remove it from `required`.',
  },
  RQ2040: {
    name: 'spec.literal_credential',
    title: 'A credential is written literally in the spec (auth value, Authorization header, token parameter)',
    hint: 'Declare a `secret: true` connection setting and reference it, e.g. `token: "{{ $secrets.api_token }}"`; rotate the leaked credential.',
  },
  RQ2041: {
    name: 'spec.webhook_secret_not_secret',
    title: 'A webhook verification secret or token does not come from $secrets',
    hint: 'Use `{{ $secrets.<name> }}` with a `secret: true` connection setting.',
  },
  RQ2050: {
    name: 'spec.unknown_parent',
    title: '`parent.stream` names a stream that does not exist',
    hint: 'Use the name of another stream of this connector.',
  },
  RQ2051: {
    name: 'spec.parent_cycle',
    title: 'Streams are each other’s parents (a cycle)',
    hint: 'Parent→child links must form a tree; remove one of the `parent:` links.',
  },
  RQ2052: {
    name: 'spec.duplicate_stream',
    title: 'Two streams have the same name',
    hint: 'Stream names key cursors and state; rename one of them.',
  },
  RQ2053: {
    name: 'spec.unknown_hook',
    title: 'A hook is not registered in @routiq/sdk',
    hint: 'Fix the name (the message lists the registered hooks of that kind), or register the hook with registerHook() in @routiq/sdk.',
  },
  RQ2054: {
    name: 'spec.hook_wrong_kind',
    title: 'A hook is registered for a different hook point',
    hint: 'Use a hook registered for this point (before_request, after_fetch, after_map, match_identity).',
  },
  RQ2060: {
    name: 'spec.unknown_target_field',
    title: 'A mapping writes a field that the unified target does not have',
    hint: 'Fix the field name (see the target tables in docs/connector-spec.md) or keep platform fields under `metadata`.',
  },
  RQ2061: {
    name: 'spec.missing_target_field',
    title: 'A mapping does not write a field the unified target requires',
    hint: 'Add the field to the mapping’s object; patch mappings need only the natural key.',
  },
  RQ2062: {
    name: 'spec.cursor_not_mapped',
    title: 'The incremental cursor field is not read by any mapping of the stream',
    hint: 'Map the cursor field (e.g. into a column or `metadata`) so stored rows show how far the sync got and changes can be detected.',
  },
  RQ2063: {
    name: 'spec.bad_target_value',
    title: 'A mapping writes a constant that the target field does not allow',
    hint: 'Use one of the values listed in the message.',
  },
  RQ2070: {
    name: 'spec.no_incremental',
    title: 'A stream has no incremental cursor: every run re-reads all of it',
    hint: 'Add `incremental:` with the platform’s updated-at field, or accept the full re-read (fine for small lookup lists).',
  },
  RQ2071: {
    name: 'spec.no_max_pages',
    title: 'Cursor or next-link pagination without `max_pages`',
    hint: 'Set a `max_pages` that fits the data so a misbehaving API cannot keep the run paging until the default cap of 100000.',
  },
  RQ2072: {
    name: 'spec.cursor_unused',
    title: 'An incremental cursor is kept but never sent to the API nor used to stop or filter',
    hint: 'Add `incremental.send` (e.g. `updated_since: "{{ $cursor_iso }}"`), `stop_when_older: true` or `client_filter: true`.',
  },
  RQ2073: {
    name: 'spec.send_without_cursor',
    title: '`incremental.send` does not use $cursor, $cursor_iso or $cursor_unix',
    hint: 'Send the cursor, e.g. `updated_since: "{{ $cursor_iso }}"`; otherwise incremental runs fetch the same as full ones.',
  },
  RQ2074: {
    name: 'spec.parent_unused',
    title: 'A child stream’s request never uses $parent: it sends the same request for every parent',
    hint: 'Use the parent in the path or params, e.g. `/conversations/{{ $parent.id }}/messages`.',
  },
  RQ2075: {
    name: 'spec.bad_deletions',
    title: '`deletions` cannot work where it is declared',
    hint: 'Declare `deletions` on a top-level stream (a complete listing of one parent’s children says nothing about the others), with `targets` this stream’s mappings write.',
  },
  RQ2080: {
    name: 'spec.bad_regex',
    title: 'A regular expression in the spec does not compile',
    hint: 'Fix the pattern (JavaScript regular expression syntax).',
  },
} as const satisfies Record<string, CodeInfo>;

export type LintCode = keyof typeof defs;

export const lintCodes: Record<string, CodeInfo> = defs;

/** Default severity of each lint code: errors fail `routiq lint` (exit 1), warnings do not. */
export const lintSeverity: Record<LintCode, 'error' | 'warning'> = {
  RQ2001: 'error',
  RQ2002: 'error',
  RQ2003: 'error',
  RQ2010: 'error',
  RQ2011: 'error',
  RQ2012: 'error',
  RQ2013: 'error',
  RQ2014: 'error',
  RQ2015: 'error',
  RQ2020: 'error',
  RQ2021: 'error',
  RQ2022: 'error',
  RQ2023: 'error',
  RQ2024: 'error',
  RQ2025: 'error',
  RQ2026: 'error',
  RQ2030: 'error',
  RQ2031: 'error',
  RQ2032: 'error',
  RQ2033: 'error',
  RQ2034: 'error',
  RQ2040: 'error',
  RQ2041: 'error',
  RQ2050: 'error',
  RQ2051: 'error',
  RQ2052: 'error',
  RQ2053: 'error',
  RQ2054: 'error',
  RQ2060: 'error',
  RQ2061: 'error',
  RQ2062: 'error',
  RQ2063: 'error',
  RQ2070: 'warning',
  RQ2071: 'warning',
  RQ2072: 'warning',
  RQ2073: 'warning',
  RQ2074: 'warning',
  RQ2075: 'error',
  RQ2080: 'error',
};

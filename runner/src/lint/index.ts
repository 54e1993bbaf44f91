/**
 * `routiq lint`: connector specs and config files checked against their JSON Schemas and the semantic rules,
 * every finding at a real file:line:col with a stable code from the error registry.
 */
export { type LintConfigOptions, lintConfigText } from './config.ts';
export { type Finding, normalizeFindings } from './finding.ts';
export { formatFindings, LINT_EXIT, lintExitCode, summarize } from './format.ts';
export { classifyYaml, type FileKind, type LintPathsOptions, type LintPathsResult, lintPaths } from './paths.ts';
export { type HookInfo, type LintSpecOptions, lintSpecText } from './spec.ts';

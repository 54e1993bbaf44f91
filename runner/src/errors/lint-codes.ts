import type { CodeInfo } from './registry.ts';

/** Connector-spec lint codes (RQ2xxx). Owned by the linter; see runner/src/lint/. */
export const lintCodes: Record<string, CodeInfo> = {};

import type { HookKind, HookKinds } from './hooks.ts';

interface Entry<K extends HookKind = HookKind> {
  kind: K;
  fn: HookKinds[K];
  description: string;
}

const registry = new Map<string, Entry>();

/** Register a named hook. Names are `area.verb` (e.g. `identity.match`) and unique. */
export function registerHook<K extends HookKind>(name: string, kind: K, fn: HookKinds[K], description: string): void {
  if (registry.has(name)) throw new Error(`hook "${name}" is already registered`);
  registry.set(name, { kind, fn, description } as Entry);
}

export function getHook<K extends HookKind>(name: string, kind: K): HookKinds[K] | undefined {
  const e = registry.get(name);
  return e && e.kind === kind ? (e.fn as HookKinds[K]) : undefined;
}

export function listHooks(): Array<{ name: string; kind: HookKind; description: string }> {
  return [...registry.entries()].map(([name, e]) => ({ name, kind: e.kind, description: e.description }));
}

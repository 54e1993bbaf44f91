import type { HookKind, HookKinds } from './hooks.ts';

interface Entry<K extends HookKind = HookKind> {
  kind: K;
  fn: HookKinds[K];
  description: string;
  /** The connector hooks file that registered it (connectors/<name>/hooks.ts), if any. */
  origin?: string;
}

const registry = new Map<string, Entry>();

/** Register a named hook. Names are `area.verb` (e.g. `identity.match`) and unique. */
export function registerHook<K extends HookKind>(name: string, kind: K, fn: HookKinds[K], description: string): void {
  if (registry.has(name)) throw new Error(`hook "${name}" is already registered`);
  registry.set(name, { kind, fn, description } as Entry);
}

/**
 * Register the hooks of a connector folder (`connectors/<name>/hooks.ts`). Every name must start with
 * `<connector>.`; registering the same file again (a reloaded or copied connector) replaces its hooks, but a name
 * another connector or the SDK owns is refused.
 */
export function registerConnectorHooks(
  connector: string,
  origin: string,
  hooks: Record<string, { kind: HookKind; fn: HookKinds[HookKind]; description: string }>,
): string[] {
  const names = Object.keys(hooks);
  for (const name of names) {
    if (!name.startsWith(`${connector}.`))
      throw new Error(`${origin}: hook "${name}" must be named ${connector}.<something> (hooks are global by name)`);
    const prev = registry.get(name);
    if (prev && prev.origin === undefined)
      throw new Error(`${origin}: hook "${name}" is already registered by the SDK`);
  }
  for (const name of names) {
    const h = hooks[name] as Entry;
    registry.set(name, { kind: h.kind, fn: h.fn, description: h.description, origin });
  }
  return names;
}

export function getHook<K extends HookKind>(name: string, kind: K): HookKinds[K] | undefined {
  const e = registry.get(name);
  return e && e.kind === kind ? (e.fn as HookKinds[K]) : undefined;
}

export function listHooks(): Array<{ name: string; kind: HookKind; description: string }> {
  return [...registry.entries()].map(([name, e]) => ({ name, kind: e.kind, description: e.description }));
}

/** Every simulator started in this process, so closeAll() can stop them (tests, demo shutdown). */
const open = new Set<{ close(): Promise<void> }>();

export function track<T extends { close(): Promise<void> }>(sim: T): T {
  const close = sim.close.bind(sim);
  open.add(sim);
  sim.close = async () => {
    open.delete(sim);
    await close();
  };
  return sim;
}

/** Closes every simulator started in this process that is still open. */
export async function closeAll(): Promise<void> {
  await Promise.allSettled([...open].map((s) => s.close()));
}

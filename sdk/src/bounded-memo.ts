/**
 * A memo that keeps what was used recently, in bounded memory: two generations of at most `max` entries each.
 * When the current generation fills, it becomes the previous one (the older previous is dropped); a hit in the
 * previous generation moves the entry back to the current one. Dropping everything when full, as the memos did
 * before, threw away entries still in use: a 20,000-patient Cliniko sync parsed its 25,825 phone numbers 89,423
 * times. Values are never undefined (undefined means "not known").
 */
export class BoundedMemo<K, V> {
  private current = new Map<K, V>();
  private previous = new Map<K, V>();

  constructor(private readonly max: number) {}

  get(key: K): V | undefined {
    const v = this.current.get(key);
    if (v !== undefined) return v;
    const old = this.previous.get(key);
    if (old !== undefined) this.set(key, old);
    return old;
  }

  set(key: K, value: V): void {
    if (this.current.size >= this.max) {
      this.previous = this.current;
      this.current = new Map();
    }
    this.current.set(key, value);
  }
}

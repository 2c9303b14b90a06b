/** A set of callbacks for one kind of client notification: add() returns the function that removes it. */
export class Listeners<T> {
  private readonly fns = new Set<(value: T) => void>();

  add(fn: (value: T) => void): () => void {
    this.fns.add(fn);
    return () => this.fns.delete(fn);
  }

  /** Calls every listener in the order they were added. */
  emit(value: T): void {
    for (const fn of this.fns) fn(value);
  }
}

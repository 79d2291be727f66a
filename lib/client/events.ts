/**
 * A small typed event emitter: `on(type, listener)` returns the function
 * that removes the listener. A listener that throws does not stop the
 * client: its error is reported as `EventTarget` does, from a microtask.
 *
 * @module
 */

/** Listeners of a map of event names to event payloads. */
export class Emitter<Events extends Record<string, unknown>> {
  #listeners = new Map<keyof Events, Set<(event: never) => void>>();

  /** Calls `listener` for every `type` event; returns the function that stops it. */
  on<K extends keyof Events>(type: K, listener: (event: Events[K]) => void): () => void {
    let set = this.#listeners.get(type);
    if (!set) this.#listeners.set(type, set = new Set());
    set.add(listener);
    return () => this.off(type, listener);
  }

  /** Calls `listener` for the next `type` event only. */
  once<K extends keyof Events>(type: K, listener: (event: Events[K]) => void): () => void {
    const off = this.on(type, (event) => {
      off();
      listener(event);
    });
    return off;
  }

  /** Removes a listener added by {@link on}. */
  off<K extends keyof Events>(type: K, listener: (event: Events[K]) => void): void {
    this.#listeners.get(type)?.delete(listener);
  }

  /** Calls each listener of `type` with `event`, in the order they were added. */
  protected emit<K extends keyof Events>(type: K, event: Events[K]): void {
    for (const listener of [...(this.#listeners.get(type) ?? [])]) {
      try {
        (listener as (event: Events[K]) => void)(event);
      } catch (error) {
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}

/**
 * Helpers of the client SDK's tests: timers the test fires itself (so a
 * heartbeat happens when the test says, without waiting for it), and a
 * promise of a client's next event.
 *
 * @module
 */

import type { ClientClock } from "../../lib/client/clock.ts";
import type { RelayClient, RelayClientEvents } from "../../lib/client/mod.ts";

/**
 * A {@link ClientClock} whose timers run only when the test fires them. Its
 * time is `now()` as given: the real clock, or a server's FakeClock.
 */
export class ManualTimers implements ClientClock {
  #now: () => number;
  #next = 1;
  #timers = new Map<number, { at: number; callback: () => void }>();

  constructor(now: () => number = () => Date.now()) {
    this.#now = now;
  }

  now(): number {
    return this.#now();
  }

  setTimeout(callback: () => void, ms: number): unknown {
    const id = this.#next++;
    this.#timers.set(id, { at: this.#now() + ms, callback });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }

  /** How many timers are pending. */
  get pending(): number {
    return this.#timers.size;
  }

  /** When the earliest timer is due, ms; undefined when none is pending. */
  get nextAt(): number | undefined {
    const times = [...this.#timers.values()].map((timer) => timer.at);
    return times.length ? Math.min(...times) : undefined;
  }

  /** Runs the earliest timer now, whatever its due time; returns its due time. */
  fire(): number {
    const entries = [...this.#timers.entries()].sort(([, a], [, b]) => a.at - b.at);
    if (entries.length === 0) throw new Error("No timer is pending");
    const [id, timer] = entries[0];
    this.#timers.delete(id);
    timer.callback();
    return timer.at;
  }
}

/** The next `type` event of `client`. */
export function nextEvent<K extends keyof RelayClientEvents>(
  client: RelayClient,
  type: K,
): Promise<RelayClientEvents[K]> {
  return new Promise((resolve) => client.once(type, resolve));
}

/** Records every event of `client`, as `[type, payload]`, in order. */
export function recordEvents(client: RelayClient): [string, unknown][] {
  const events: [string, unknown][] = [];
  for (const type of ["lease", "heartbeat", "retry", "lost", "released"] as const) {
    client.on(type, (event) => events.push([type, event]));
  }
  return events;
}

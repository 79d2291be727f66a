/**
 * The checkpointer's worker thread (started by `./checkpointer.ts`):
 * holds a {@link WalCheckpointer} connection and runs a checkpoint after
 * requests, so the server's JavaScript thread never copies WAL pages or
 * fsyncs the database file itself. Requests that arrive while one waits or
 * runs are served by the next run, so the worker paces itself. Spacing runs
 * 50 ms apart made each one's fsync large enough to stall the writer's own
 * fsyncs (reaping 100,000 leases: 2.0 s → 2.8 s, clients stalled up to
 * 118 ms), so runs are not spaced.
 *
 * Messages in: {@link CheckpointerRequest}; out: {@link CheckpointerReport}.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { WalCheckpointer } from "./wal_checkpointer.ts";
import type { CheckpointerReport, CheckpointerRequest } from "./checkpointer.ts";

let connection: WalCheckpointer | null = null;
/** The newest request received; a run covers every request before it started. */
let latest = 0;
let timer: ReturnType<typeof setTimeout> | undefined;

function report(message: CheckpointerReport): void {
  self.postMessage(message);
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function run(): void {
  timer = undefined;
  if (!connection) return;
  const seq = latest;
  try {
    report({ type: "done", seq, ...connection.checkpoint() });
  } catch (error) {
    report({ type: "failed", seq, message: describe(error) });
  }
}

self.onmessage = (event: MessageEvent<CheckpointerRequest>) => {
  const request = event.data;
  switch (request.type) {
    case "open":
      try {
        connection = new WalCheckpointer(request.path);
        report({ type: "ready" });
      } catch (error) {
        report({ type: "failed", seq: 0, message: describe(error) });
        report({ type: "closed" });
        self.close();
      }
      break;
    case "checkpoint":
      latest = request.seq;
      // Requests that arrive while one is waiting are served by that one.
      if (timer === undefined) {
        timer = setTimeout(run, 0);
      }
      break;
    case "close":
      clearTimeout(timer);
      connection?.close();
      connection = null;
      report({ type: "closed" });
      self.close();
      break;
  }
};

/**
 * `RelayClient`: one seat (a node or a user) held for the application for as
 * long as it runs. `claim()` on boot; then a heartbeat about every third of
 * the TTL, with jitter; `release()` on shutdown (or on SIGINT/SIGTERM, with
 * `handleSignals`).
 *
 * What the application hears, as events:
 * - `lease`: a license to use: `claimed` (from `claim()`), `reassigned` (a
 *   heartbeat answered `201`: the relay gave this seat another license),
 *   `renewed` (the same license with a later file), `reclaimed` (a license
 *   again after the lease was lost);
 * - `heartbeat`: the lease was extended;
 * - `retry`: a request failed (unreachable, refused signature, `5xx`, …) and
 *   is tried again after a backoff;
 * - `lost`: the lease ran out before the relay acknowledged a heartbeat
 *   (`expired`), or the relay says the seat is gone (`revoked`); the client
 *   keeps claiming and reports `lease` `reclaimed` when it gets one;
 * - `released`: `release()` finished.
 *
 * A relay that restarts on the same database keeps the lease: heartbeats are
 * retried until it answers, and the lease counts as valid until the last
 * acknowledged expiry.
 *
 * @module
 */

import { del, type Extension, get, type Grant, type LeaseHeaders, put } from "./api.ts";
import { type ClientClock, SYSTEM_CLOCK } from "./clock.ts";
import { fromBase64 } from "./encoding.ts";
import { RelayClientError } from "./errors.ts";
import { Emitter } from "./events.ts";
import {
  importPublicKey,
  type LicenseInfo,
  type VendorKey,
  verifyLicenseFile,
} from "./license_file.ts";
import { importSigningSecret } from "./signature.ts";
import type { RelayClientOptions } from "./options.ts";
import { exitProcess, onShutdownSignal, SIGNAL_EXIT_CODES } from "./signals.ts";

/** The license the seat holds. */
export interface Lease {
  /** The license's id (`Relay-License-Id`, else the verified file's), or null if neither told it. */
  licenseId: string | null;
  /** The license file, as its certificate text (`-----BEGIN LICENSE FILE-----…`). */
  licenseFile: string;
  /** The license key, which decrypts the file. */
  licenseKey: string;
  /** The lease's end as the relay counts it, unix seconds; null when the relay runs without heartbeats. */
  expiresAt: number | null;
  /** The lease's end on this machine's clock, ms; the lease is valid until then. Null: no end. */
  validUntil: number | null;
  /** The file's `meta.expiry` (`Relay-License-Expires`), unix seconds, or null. */
  licenseExpires: number | null;
  /** The pool the lease is in (`Relay-Pool`), or null. */
  pool: string | null;
  /** The verified dataset, when a `publicKey` was given; else null. */
  license: LicenseInfo | null;
}

/** Where the client stands. */
export type ClientState = "idle" | "held" | "lost" | "released";

/** The events of a {@link RelayClient}, by name. */
export interface RelayClientEvents extends Record<string, unknown> {
  lease: {
    reason: "claimed" | "reassigned" | "renewed" | "reclaimed";
    lease: Lease;
    /** The lease it replaces, if any. */
    previous: Lease | null;
  };
  heartbeat: { lease: Lease };
  retry: { error: RelayClientError; attempt: number; delayMs: number };
  lost: { lease: Lease; reason: "expired" | "revoked"; error: RelayClientError | null };
  released: { lease: Lease | null };
}

/** Holds one seat of a Relay for the application; see the module documentation. */
export class RelayClient extends Emitter<RelayClientEvents> {
  #options: RelayClientOptions;
  #clock: ClientClock;
  #random: () => number;
  #config: Promise<Parameters<typeof put>[0]>;
  #publicKey: Promise<VendorKey> | null;
  #state: ClientState = "idle";
  #lease: Lease | null = null;
  #timer: unknown = undefined;
  #attempt = 0;
  #inflight: Promise<void> | null = null;
  #releasing: Promise<void> | null = null;
  #renewalPending = false;
  #signals: (() => void) | null = null;

  constructor(options: RelayClientOptions) {
    super();
    if ((options.fingerprint === undefined) === (options.user === undefined)) {
      throw new TypeError("Give RelayClient either a fingerprint or a user, not both or neither");
    }
    this.#options = options;
    const clock = this.#clock = options.clock ?? SYSTEM_CLOCK;
    this.#random = options.random ?? Math.random;
    this.#publicKey = options.publicKey === undefined ? null : importPublicKey(options.publicKey);
    this.#publicKey?.catch(() => {}); // Reported by claim().
    this.#config = (async () =>
      ({
        url: options.url,
        prefix: options.user === undefined ? "/v1/nodes/" : "/v1/users/",
        id: options.user ?? options.fingerprint!,
        pool: options.pool ?? null,
        token: options.token ?? null,
        signature: options.signingSecret === undefined ? null : {
          key: await importSigningSecret(options.signingSecret),
          toleranceSeconds: options.signatureToleranceSeconds ?? 300,
          allowV1: options.allowV1Signatures ?? false,
        },
        clock,
        fetch: options.fetch ?? ((input, init) => globalThis.fetch(input, init)),
        timeoutMs: options.requestTimeoutMs ?? 10_000,
      }) as const)();
  }

  /** Where the client stands: `idle` before `claim()`, then `held`, `lost` or `released`. */
  get state(): ClientState {
    return this.#state;
  }

  /** The lease held (or last held, when `lost`); null before a claim. */
  get lease(): Lease | null {
    return this.#lease;
  }

  /** Whether the application may use the license now: held, and not past the last acknowledged expiry. */
  get valid(): boolean {
    const until = this.#lease?.validUntil;
    return this.#state === "held" && (until === null || this.#clock.now() < until!);
  }

  /**
   * Claims the seat (waiting up to `wait` seconds for one), then heartbeats
   * until {@link release}. Call once; after a failure it may be called again.
   *
   * @throws {RelayClientError} `exhausted` (410, with `retryAfter`), `conflict`,
   *   `unauthorized`, `unreachable`, `bad_signature`, `invalid_license_file`, …
   */
  async claim(): Promise<Lease> {
    if (this.#state !== "idle" || this.#inflight) {
      throw new RelayClientError(
        "rejected",
        `claim() was already called (the client is ${this.#state})`,
      );
    }
    let lease: Lease;
    const run = (async () => {
      const config = await this.#config;
      const answer = await put(config, this.#options.wait);
      // A 202: the seat was still held (the application restarted); the
      // file comes with it (a user's seat) or by GET.
      const granted = answer.kind === "granted" ? answer : answer.grant ?? await get(config);
      lease = await this.#leaseOf(granted, answer);
    })();
    this.#inflight = run.catch(() => {});
    try {
      await run;
    } finally {
      this.#inflight = null;
    }
    if (this.#releasing) {
      throw new RelayClientError("released", "The client was released during claim()");
    }
    this.#lease = lease!;
    this.#state = "held";
    if (this.#options.handleSignals) {
      this.#signals = onShutdownSignal((signal) => this.#onSignal(signal));
    }
    this.emit("lease", { reason: "claimed", lease: lease!, previous: null });
    this.#scheduleHeartbeat(lease!);
    return lease!;
  }

  /**
   * Stops heartbeating and releases the seat (`DELETE`); a seat the relay no
   * longer holds counts as released. Safe to call more than once. If the
   * relay cannot be reached the lease ends by itself at its expiry.
   *
   * @throws {RelayClientError} the relay did not accept the release.
   */
  release(): Promise<void> {
    this.#releasing ??= (async () => {
      const claimed = this.#state !== "idle" || this.#inflight !== null;
      this.#state = "released";
      this.#clock.clearTimeout(this.#timer);
      this.#signals?.();
      this.#signals = null;
      // A PUT still under way would re-create the lease after the DELETE.
      await this.#inflight;
      if (claimed) await del(await this.#config);
      this.emit("released", { lease: this.#lease });
    })();
    return this.#releasing;
  }

  /** Whether release() was called (a method, so the compiler does not narrow it across awaits). */
  #released(): boolean {
    return this.#state === "released";
  }

  #onSignal(signal: keyof typeof SIGNAL_EXIT_CODES): void {
    this.release().catch(() => {}).finally(() => {
      if (this.#options.exitOnSignal ?? true) exitProcess(SIGNAL_EXIT_CODES[signal]);
    });
  }

  #schedule(delayMs: number): void {
    this.#clock.clearTimeout(this.#timer);
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      if (this.#released()) return;
      const run = this.#beat();
      this.#inflight = run;
      // #beat() handles its own errors; the catch only keeps this chain quiet.
      run.finally(() => {
        if (this.#inflight === run) this.#inflight = null;
      }).catch(() => {});
    }, Math.max(0, Math.round(delayMs)));
  }

  /** The next heartbeat, about a third of the TTL away; none without an expiry. */
  #scheduleHeartbeat(lease: Lease): void {
    if (lease.validUntil === null) return;
    const third = (lease.validUntil - this.#clock.now()) / 3;
    this.#schedule(Math.max(100, third * (0.9 + 0.2 * this.#random())));
  }

  /** One heartbeat (or claim, once lost), then the next one scheduled. */
  async #beat(): Promise<void> {
    const lease = this.#lease!;
    if (
      this.#state === "held" && lease.validUntil !== null && this.#clock.now() >= lease.validUntil
    ) {
      this.#lose("expired", null);
    }
    const held = this.#state === "held";
    try {
      const config = await this.#config;
      const answer = await put(config, held ? undefined : this.#options.wait);
      if (this.#released()) return;
      let next: Lease;
      if (answer.kind === "granted") {
        next = await this.#leaseOf(answer, answer);
        if (!held) this.#commit(next, "reclaimed", lease);
        else if (next.licenseId !== lease.licenseId) this.#commit(next, "reassigned", lease);
        else if (next.licenseFile !== lease.licenseFile) this.#commit(next, "renewed", lease);
        else {
          // The same license and file again (the lease ran out and was
          // re-granted before anyone took it): nothing changed for the application.
          this.#lease = next;
          this.emit("heartbeat", { lease: next });
        }
      } else {
        next = { ...lease, ...this.#expiry(answer) };
        // Another license or a later file: the new file comes with the 202
        // (a user's seat) or by GET (a node's, which a 202 does not carry).
        const { licenseId, licenseExpires } = answer.headers;
        this.#renewalPending ||= (licenseExpires !== null &&
          (lease.licenseExpires === null || licenseExpires > lease.licenseExpires)) ||
          (licenseId !== null && lease.licenseId !== null && licenseId !== lease.licenseId) ||
          (answer.grant !== null && decodeFile(answer.grant.licenseFile) !== lease.licenseFile);
        if (this.#renewalPending) {
          next = await this.#leaseOf(answer.grant ?? await get(config), answer);
          if (this.#released()) return;
          this.#renewalPending = false;
          const reason = !held
            ? "reclaimed"
            : next.licenseId !== lease.licenseId
            ? "reassigned"
            : "renewed";
          this.#commit(next, reason, lease);
        } else if (held) {
          this.#lease = next;
          this.emit("heartbeat", { lease: next });
        } else {
          this.#commit(next, "reclaimed", lease);
        }
      }
      this.#attempt = 0;
      this.#scheduleHeartbeat(next);
    } catch (cause) {
      if (this.#released()) return;
      const error = cause instanceof RelayClientError
        ? cause
        : new RelayClientError("rejected", String(cause), { cause });
      if (this.#state === "held" && (error.code === "exhausted" || error.code === "conflict")) {
        this.#lose("revoked", error);
      }
      this.#attempt++;
      this.#scheduleRetry(error);
    }
  }

  #commit(lease: Lease, reason: RelayClientEvents["lease"]["reason"], previous: Lease): void {
    this.#lease = lease;
    this.#state = "held";
    this.emit("lease", { reason, lease, previous });
  }

  #lose(reason: "expired" | "revoked", error: RelayClientError | null): void {
    this.#state = "lost";
    this.emit("lost", { lease: this.#lease!, reason, error });
  }

  /** Exponential backoff with jitter; while held, never past the lease's end (to report its loss on time). */
  #scheduleRetry(error: RelayClientError): void {
    const initial = this.#options.retryInitialMs ?? 1000;
    const max = this.#options.retryMaxMs ?? 30_000;
    const base = Math.min(max, initial * 2 ** Math.min(this.#attempt - 1, 30));
    let delay = base / 2 + (this.#random() * base) / 2;
    if (error.retryAfter !== undefined) {
      delay = Math.max(delay, Math.min(max, error.retryAfter * 1000));
    }
    const until = this.#lease?.validUntil;
    if (this.#state === "held" && until != null) {
      delay = Math.min(delay, Math.max(0, until - this.#clock.now()));
    }
    this.emit("retry", { error, attempt: this.#attempt, delayMs: delay });
    this.#schedule(delay);
  }

  /** The lease's end, as the relay says and on this machine's clock. */
  #expiry(answer: Grant | Extension): Pick<Lease, "expiresAt" | "validUntil"> {
    const { expiresAt, expiresIn, headers } = answer;
    if (expiresAt === null) return { expiresAt, validUntil: null };
    // What is left by the relay's clock, counted from the answer's arrival;
    // without Relay-Clock, the TTL from the request's departure.
    const validUntil = headers.clock !== null
      ? headers.receivedAt + (expiresAt - headers.clock) * 1000
      : headers.sentAt + (expiresIn ?? 0) * 1000;
    return { expiresAt, validUntil };
  }

  /** A lease from a grant (its file, verified when a public key was given) and the expiry of `answer`. */
  async #leaseOf(grant: Grant, answer: Grant | Extension): Promise<Lease> {
    let licenseFile: string;
    try {
      licenseFile = new TextDecoder("utf-8", { fatal: true }).decode(fromBase64(grant.licenseFile));
    } catch {
      throw new RelayClientError(
        "malformed_response",
        "Relay's license_file is not base64 of text",
      );
    }
    const license = this.#publicKey === null ? null : await verifyLicenseFile(licenseFile, {
      publicKey: await this.#publicKey,
      licenseKey: grant.licenseKey,
      now: Math.floor(this.#clock.now() / 1000),
    });
    const headers: LeaseHeaders = grant.headers;
    return {
      licenseId: headers.licenseId ?? license?.id ?? null,
      licenseFile,
      licenseKey: grant.licenseKey,
      ...this.#expiry(answer),
      licenseExpires: headers.licenseExpires ??
        (license?.fileExpiry ? Math.floor(license.fileExpiry.getTime() / 1000) : null),
      pool: headers.pool,
      license,
    };
  }
}

/** The certificate text of a `license_file` (base64 of it). */
function decodeFile(base64: string): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(fromBase64(base64));
  } catch {
    throw new RelayClientError("malformed_response", "Relay's license_file is not base64 of text");
  }
}

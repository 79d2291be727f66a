/**
 * The dataset of a minted Keygen machine file, as Keygen's "check out
 * machine" action renders it: the machine as a JSON:API resource with
 * `meta.issued`, `meta.expiry` and `meta.ttl`. `scripts/mint.ts`
 * (`mintMachineFile`) encrypts, signs and frames it.
 *
 * @module
 */

import type { LicenseFileAlgorithm } from "../lib/license_file.ts";

/** What to put in a minted machine file; everything but the fingerprint has a default. */
export interface MachineMintOptions {
  /** The machine's fingerprint (`data.attributes.fingerprint`). */
  fingerprint: string;
  /**
   * The fingerprint the file is encrypted for; default {@link fingerprint}.
   * Keygen always uses the machine's own: tests set another to build a file
   * that decrypts on one machine but names another.
   */
  encryptedFor?: string;
  /** The machine's license key; default a random one. */
  licenseKey?: string;
  /** Machine id; default `crypto.randomUUID()`. */
  id?: string;
  /** `data.attributes.platform`, `hostname`, `ip`; default null. */
  platform?: string | null;
  hostname?: string | null;
  ip?: string | null;
  /** Certificate `alg`; default `aes-256-gcm+ed25519`, or `aes-256-gcm+rsa-pss-sha256` for an RSA key pair. */
  algorithm?: LicenseFileAlgorithm;
  /** `meta.issued`; default now. */
  issued?: Date;
  /** `meta.ttl` in seconds, null for a file that never expires; default 2592000 (30 days). */
  ttl?: number | null;
}

/**
 * The decrypted dataset, with the members and order of a machine file Keygen
 * issues; `ttl` in seconds, null for a file that never expires.
 */
export function machineDataset(
  id: string,
  options: MachineMintOptions & { issued: Date; ttl: number | null },
) {
  const { issued, ttl } = options;
  const accountId = crypto.randomUUID();
  const account = `/v1/accounts/${accountId}`;
  const self = `${account}/machines/${id}`;
  const created = issued.toISOString();
  const related = (name: string) => ({ related: `${self}/${name}` });
  return {
    data: {
      id,
      type: "machines",
      attributes: {
        fingerprint: options.fingerprint,
        cores: null,
        memory: null,
        disk: null,
        ip: options.ip ?? null,
        hostname: options.hostname ?? null,
        platform: options.platform ?? null,
        name: null,
        requireHeartbeat: false,
        heartbeatStatus: "NOT_STARTED",
        heartbeatDuration: null,
        lastHeartbeat: null,
        nextHeartbeat: null,
        lastCheckOut: created,
        metadata: {},
        created,
        updated: created,
      },
      relationships: {
        account: { links: { related: account }, data: { type: "accounts", id: accountId } },
        environment: { links: { related: null }, data: null },
        product: { links: related("product"), data: { type: "products", id: crypto.randomUUID() } },
        group: { links: related("group"), data: null },
        license: { links: related("license"), data: { type: "licenses", id: crypto.randomUUID() } },
        owner: { links: related("owner"), data: null },
        components: { links: related("components") },
        processes: { links: related("processes"), meta: { count: 0 } },
      },
      links: { self },
    },
    meta: {
      issued: issued.toISOString(),
      expiry: ttl === null ? null : new Date(issued.getTime() + ttl * 1000).toISOString(),
      ttl,
    },
  };
}

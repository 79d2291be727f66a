/**
 * The dataset of a minted Keygen license file, as Keygen's "check out
 * license" action renders it: the license as a JSON:API resource, its
 * entitlements, and `meta.issued`, `meta.expiry` and `meta.ttl`.
 * `scripts/mint.ts` (`mintLicenseFile`) encrypts, signs and frames it.
 *
 * @module
 */

/**
 * The decrypted dataset, with the members and order of a real Keygen license
 * file; `ttl` in seconds, null for a file that never expires.
 */
export function licenseDataset(
  id: string,
  key: string,
  options: {
    issued: Date;
    ttl: number | null;
    expiry?: Date | null;
    entitlements?: string[];
    /** `data.attributes.maxMachines`; default null (no limit stated). */
    maxMachines?: number | null;
    /** `data.attributes.maxUsers`; default null (no limit stated). */
    maxUsers?: number | null;
  },
) {
  const { issued, ttl } = options;
  const account = `/v1/accounts/${crypto.randomUUID()}`;
  const self = `${account}/licenses/${id}`;
  const accountData = { type: "accounts", id: account.slice("/v1/accounts/".length) };
  const related = (name: string) => ({ related: `${self}/${name}` });
  const created = issued.toISOString();
  const included = (options.entitlements ?? []).map((code) => {
    const entitlementId = crypto.randomUUID();
    return {
      id: entitlementId,
      type: "entitlements",
      attributes: { name: code, code, metadata: {}, created, updated: created },
      relationships: { account: { links: { related: account }, data: accountData } },
      links: { self: `${account}/entitlements/${entitlementId}` },
    };
  });
  return {
    data: {
      id,
      type: "licenses",
      attributes: {
        name: `Minted ${id.slice(0, 8)}`,
        key,
        expiry: options.expiry?.toISOString() ?? null,
        status: "ACTIVE",
        uses: 0,
        suspended: false,
        scheme: null,
        encrypted: false,
        strict: false,
        floating: true,
        protected: true,
        version: null,
        maxMachines: options.maxMachines ?? null,
        maxProcesses: null,
        maxUsers: options.maxUsers ?? null,
        maxCores: null,
        maxMemory: null,
        maxDisk: null,
        maxUses: null,
        requireHeartbeat: false,
        requireCheckIn: false,
        lastValidated: null,
        lastCheckIn: null,
        nextCheckIn: null,
        lastCheckOut: created,
        permissions: ["license.read", "license.validate"],
        metadata: {},
        created,
        updated: created,
      },
      relationships: {
        account: { links: { related: account }, data: accountData },
        environment: { links: { related: null }, data: null },
        product: { links: related("product"), data: { type: "products", id: crypto.randomUUID() } },
        policy: { links: related("policy"), data: { type: "policies", id: crypto.randomUUID() } },
        group: { links: related("group"), data: null },
        owner: { links: related("owner"), data: null },
        users: { links: related("users"), meta: { count: 0 } },
        machines: { links: related("machines"), meta: { cores: 0, memory: 0, disk: 0, count: 0 } },
        tokens: { links: related("tokens") },
        entitlements: { links: related("entitlements") },
      },
      links: { self },
    },
    ...(included.length > 0 ? { included } : {}),
    meta: {
      issued: issued.toISOString(),
      expiry: ttl === null ? null : new Date(issued.getTime() + ttl * 1000).toISOString(),
      ttl,
    },
  };
}

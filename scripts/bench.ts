/**
 * Micro-benchmarks of the vendor path (`deno task bench`): verifying license
 * files and adding them to a store. Server load benchmarks join these as the
 * server lands.
 *
 * @module
 */

import { importPublicKey } from "../lib/license_file.ts";
import { addLicenses, type LicenseInput, verifyLicenses } from "../lib/licenses.ts";
import { openStore } from "../lib/store.ts";
import { generateKeyPair, mintLicenseFile } from "./mint.ts";

const COUNT = 1000;
const keyPair = await generateKeyPair("ed25519");
const publicKey = await importPublicKey(keyPair.publicKeyText);
const inputs: LicenseInput[] = [];
for (let i = 0; i < COUNT; i++) {
  const minted = await mintLicenseFile(keyPair);
  inputs.push({
    source: `${minted.id}.lic`,
    certificate: new TextEncoder().encode(minted.certificate),
    key: minted.key,
  });
}

Deno.bench(`verify ${COUNT} license files`, async () => {
  await verifyLicenses(inputs, { publicKey, now: new Date() });
});

Deno.bench(`verify and add ${COUNT} license files in one transaction`, async (b) => {
  const dir = await Deno.makeTempDir();
  b.start();
  const now = new Date();
  const store = openStore(`${dir}/relay.sqlite`, { now: now.getTime() / 1000 });
  addLicenses(store, await verifyLicenses(inputs, { publicKey, now }), { now });
  store.close();
  b.end();
  await Deno.remove(dir, { recursive: true });
});

/**
 * The "add" section: `relay add` of many minted license files in one
 * command, after one file for the fixed cost of the process.
 *
 * @module
 */

import { generateKeyPair, mintLicenseFile } from "../../mint.ts";
import { fmt } from "../format.ts";
import { log } from "../log.ts";
import type { Context } from "../measure.ts";
import { exitWithin } from "../procs.ts";
import type { AddResult, Results } from "../results.ts";
import { relayCommand, spawnRelay } from "../servers.ts";

/** Runs the section: mints the most files asked for, then adds each count of them. */
export async function runAddSection(context: Context): Promise<Pick<Results, "add">> {
  const dir = `${context.dir}/add`;
  await Deno.mkdir(dir);
  const counts = context.profile.add;
  const t0 = performance.now();
  const minted = await mintFiles(dir, Math.max(...counts));
  const mintSeconds = (performance.now() - t0) / 1000;
  log(`minted ${fmt(minted.keys.length)} license files in ${mintSeconds.toFixed(1)} s`);

  // One file: the fixed cost of a relay add process (start-up, key import, one transaction).
  const baseline = await addFiles(dir, minted, 1, "baseline.sqlite");
  log(`relay add of 1 file: ${baseline.seconds.toFixed(2)} s`);
  const runs: AddResult[] = [];
  for (const count of counts) {
    const run = await addFiles(dir, minted, count, `add-${count}.sqlite`);
    runs.push(run);
    log(
      `relay add of ${fmt(count)} files in one command: ${run.seconds.toFixed(2)} s ` +
        `(${run.ok ? "ok" : "FAILED"}, ${fmt(run.argumentBytes / 1024)} KiB of arguments)`,
    );
  }
  return { add: { mintSeconds, baselineSeconds: baseline.seconds, runs } };
}

/** Files `dir/<i>.lic` for i < count, and their public key and license keys. */
interface Minted {
  publicKeyText: string;
  keys: string[];
}

async function mintFiles(dir: string, count: number): Promise<Minted> {
  const keyPair = await generateKeyPair("ed25519");
  const keys: string[] = [];
  for (let start = 0; start < count; start += 200) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(200, count - start) }, () => mintLicenseFile(keyPair)),
    );
    await Promise.all(batch.map((minted, i) => {
      keys[start + i] = minted.key;
      return Deno.writeTextFile(`${dir}/${start + i}.lic`, minted.certificate);
    }));
  }
  return { publicKeyText: keyPair.publicKeyText, keys };
}

/** `relay add` of the first `count` files into a new `database` (in `dir`), timed. */
async function addFiles(
  dir: string,
  minted: Minted,
  count: number,
  database: string,
): Promise<AddResult> {
  const args = ["add", "--database", database, "--public-key", minted.publicKeyText];
  for (let i = 0; i < count; i++) args.push("--file", `${i}.lic`, "--key", minted.keys[i]);
  const argumentBytes = relayCommand(args).reduce((sum, a) => sum + a.length + 1, 0);
  const start = performance.now();
  const process = spawnRelay(args, { cwd: dir });
  const status = await exitWithin(process, 300_000);
  const seconds = (performance.now() - start) / 1000;
  const added = process.stdout.filter((l) => l.startsWith("license added successfully")).length;
  if (!status.success) log(`relay add failed: ${process.stderr.join("\n")}`);
  return { files: count, seconds, ok: status.success && added === count, added, argumentBytes };
}

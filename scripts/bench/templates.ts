/**
 * The benchmark's pristine databases, built once per size and copied for
 * every measurement: `n` free licenses, and the same with all `n` leased to
 * nodes `n0` … `n<n - 1>`. Never served themselves.
 *
 * @module
 */

import { fmt } from "./format.ts";
import { log } from "./log.ts";
import type { Results } from "./results.ts";
import { buildLicenseDb, checkpoint, copyDb, leaseDirectly, nowSeconds } from "./setup.ts";

/** One size's databases and what building them took. */
interface Template {
  free: string;
  leased?: string;
  buildSeconds: number;
  leaseSeconds?: number;
  /** Bytes of license files in the database, all licenses together. */
  fileBytes: number;
  dbBytes: number;
}

/** The templates of one run, in its temporary folder; each is built when first asked for. */
export class Templates {
  #dir: string;
  #built = new Map<number, Template>();
  /** Sizes whose shared leased working copy exists. */
  #leasedWork = new Set<number>();

  /** Templates in `dir`. */
  constructor(dir: string) {
    this.#dir = dir;
  }

  /** The pristine database with `n` free licenses (never served; copy it). */
  async free(n: number): Promise<string> {
    return (await this.#template(n)).free;
  }

  /** The pristine database with `n` licenses, all leased to nodes `n0`…; heartbeats now. */
  async leased(n: number): Promise<string> {
    const template = await this.#template(n);
    if (!template.leased) {
      const leased = `${this.#dir}/leased-${n}.sqlite`;
      const t0 = performance.now();
      await copyDb(template.free, leased);
      const now = nowSeconds();
      leaseDirectly(leased, { count: n, prefix: "n", heartbeatAt: now, now });
      checkpoint(leased);
      template.leased = leased;
      template.leaseSeconds = (performance.now() - t0) / 1000;
      log(`database with ${fmt(n)} leased licenses made in ${template.leaseSeconds.toFixed(1)} s`);
    }
    return template.leased;
  }

  /** Copies the database of `n` free licenses to `path`. */
  async copyFree(n: number, path: string): Promise<void> {
    await copyDb(await this.free(n), path);
  }

  /** Copies the database of `n` leased licenses to `path`. */
  async copyLeased(n: number, path: string): Promise<void> {
    await copyDb(await this.leased(n), path);
  }

  /**
   * A working copy of the database of `n` leased licenses, shared by the
   * heartbeat runs (they change only heartbeat times) until
   * {@link discardLeasedWork}: copying it for each run would take longer
   * than the run.
   */
  async leasedWork(n: number): Promise<string> {
    const path = `${this.#dir}/leased-work-${n}.sqlite`;
    if (!this.#leasedWork.has(n)) {
      await this.copyLeased(n, path);
      this.#leasedWork.add(n);
    }
    return path;
  }

  /** Removes the shared working copy of `n` leased licenses (it is large). */
  async discardLeasedWork(n: number): Promise<void> {
    this.#leasedWork.delete(n);
    await Deno.remove(`${this.#dir}/leased-work-${n}.sqlite`).catch(() => {});
  }

  /** The report's set-up rows: the templates of these sizes that were built. */
  summary(ns: number[]): Results["templates"] {
    return [...new Set(ns)].flatMap((n) => {
      const t = this.#built.get(n);
      return t
        ? [{
          n,
          buildSeconds: t.buildSeconds,
          leaseSeconds: t.leaseSeconds,
          dbMiB: t.dbBytes / 2 ** 20,
          fileBytes: t.fileBytes / n,
        }]
        : [];
    });
  }

  async #template(n: number): Promise<Template> {
    let template = this.#built.get(n);
    if (!template) {
      const free = `${this.#dir}/free-${n}.sqlite`;
      const t0 = performance.now();
      const { fileBytes } = await buildLicenseDb(free, n, nowSeconds());
      const buildSeconds = (performance.now() - t0) / 1000;
      template = { free, buildSeconds, fileBytes, dbBytes: Deno.statSync(free).size };
      this.#built.set(n, template);
      log(
        `database with ${fmt(n)} free licenses built in ${buildSeconds.toFixed(1)} s ` +
          `(${fmt(template.dbBytes / 2 ** 20)} MiB, files ${fmt(fileBytes / n)} B each)`,
      );
    }
    return template;
  }
}

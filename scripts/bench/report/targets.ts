/**
 * The targets of the benchmark brief, each met or missed by a run's results
 * (or not measured by it): the report's "Targets" table.
 *
 * @module
 */

import { fmt, ms } from "../format.ts";
import type { Results } from "../results.ts";
import { onOff } from "./markdown.ts";

/** One target and what the run measured for it. */
export interface Target {
  name: string;
  measured: string;
  /** null: the run did not measure it. */
  met: boolean | null;
}

/** The item of `items` with the largest `key`; undefined for none. */
function largest<T>(items: T[], key: (item: T) => number): T | undefined {
  return items.reduce<T | undefined>((a, b) => (!a || key(b) > key(a) ? b : a), undefined);
}

/** Every target, in the brief's order, as `results` meet them. */
export function targets(results: Results): Target[] {
  return [
    ...heartbeatTargets(results),
    ...claimTargets(results),
    ...reapTargets(results),
    ...commandTargets(results),
  ];
}

function heartbeatTargets(results: Results): Target[] {
  const list: Target[] = [];
  const ceiling = results.ceiling;
  for (const [audit, floor] of [[true, 0.6], [false, 0.8]] as const) {
    const configs = results.configs.filter((c) => c.audit === audit);
    if (!ceiling || configs.length === 0) {
      list.push({
        name: `heartbeat ≥ ${floor} × ceiling (audit ${onOff(audit)})`,
        measured: "not measured",
        met: null,
      });
      continue;
    }
    const ratios = configs.map((c) => ({
      c,
      r: c.heartbeat.load.rate / ceiling.heartbeat.load.rate,
    }));
    const worst = ratios.reduce((a, b) => (b.r < a.r ? b : a));
    const group = ceiling.group?.heartbeat.load.rate;
    const groupText = group
      ? `; against the group-commit ceiling ${
        (worst.c.heartbeat.load.rate / group).toFixed(2)
      }× at worst`
      : "";
    list.push({
      name: `heartbeat throughput ≥ ${floor} × ceiling, audit ${onOff(audit)}`,
      measured: `${worst.r.toFixed(2)}× at worst (N=${fmt(worst.c.n)} ${worst.c.strategy}); ` +
        `best ${Math.max(...ratios.map((x) => x.r)).toFixed(2)}×${groupText}`,
      met: ratios.every((x) => x.r >= floor),
    });
  }
  return list;
}

function claimTargets(results: Results): Target[] {
  const list: Target[] = [];
  const { ceiling, configs } = results;
  if (configs.length > 0) {
    const worst = configs.reduce((a, b) => (b.claim.load.p99 > a.claim.load.p99 ? b : a));
    list.push({
      name: `claim p99 < 5 ms at ${results.connections} connections`,
      measured: `${ms(worst.claim.load.p99)} ms at worst (N=${
        fmt(worst.n)
      } ${worst.strategy}, audit ${onOff(worst.audit)}); best ${
        ms(Math.min(...configs.map((c) => c.claim.load.p99)))
      } ms; ceiling's claim pattern ${ceiling ? ms(ceiling.claim.load.p99) : "–"} ms`,
      met: configs.every((c) => c.claim.load.p99 < 5),
    });
  }
  const ns = [...new Set(configs.map((c) => c.n))].sort((a, b) => a - b);
  if (ns.length < 2) {
    list.push({
      name: "claim p50 at N=100,000 within 1.2 × of N=1,000",
      measured: "needs both N",
      met: null,
    });
    return list;
  }
  const [small, large] = [ns[0], ns[ns.length - 1]];
  const parts: string[] = [];
  let met = true;
  for (const strategy of new Set(configs.map((c) => c.strategy))) {
    for (const audit of [true, false]) {
      const find = (n: number) =>
        configs.find((c) => c.n === n && c.strategy === strategy && c.audit === audit);
      const [a, b] = [find(small), find(large)];
      if (!a || !b) continue;
      const r = b.claim.load.p50 / a.claim.load.p50;
      met &&= r <= 1.2;
      parts.push(`${strategy}${audit ? "" : " no-audit"} ${r.toFixed(2)}×`);
    }
  }
  list.push({
    name: `claim p50 at N=${fmt(large)} within 1.2 × of N=${fmt(small)}, every strategy`,
    measured: parts.join(", "),
    met,
  });
  return list;
}

function reapTargets(results: Results): Target[] {
  const bigReap = largest(results.reaps, (r) => r.expired);
  if (!bigReap) return [];
  const worstStall = Math.max(...results.reaps.map((r) => r.probe.max));
  return [{
    name: `reaping ${fmt(bigReap.expired)} expired leases < 2 s`,
    measured: bigReap.complete ? `${bigReap.seconds.toFixed(2)} s` : "did not finish",
    met: bigReap.complete && bigReap.seconds < 2,
  }, {
    name: "no client request stalls > 100 ms while reaping",
    measured: results.reaps.map((r) =>
      `${fmt(r.expired)}: max ${ms(r.probe.max)} ms, ${r.probe.over100} over 100 ms`
    ).join("; "),
    met: worstStall <= 100,
  }];
}

/** `relay add`, start-up and memory. */
function commandTargets(results: Results): Target[] {
  const list: Target[] = [];
  const add = largest(results.add?.runs ?? [], (run) => run.files);
  if (add) {
    list.push({
      name: `relay add of ${fmt(add.files)} files < 15 s`,
      measured: `${add.seconds.toFixed(2)} s${add.ok ? "" : " (FAILED)"}`,
      met: add.ok && add.seconds < 15,
    });
  }
  const relayStartups = results.startup.filter((s) => s.label === "relay serve");
  const bigStart = largest(relayStartups, (s) => s.licenses);
  if (bigStart) {
    list.push({
      name: `start-up with ${fmt(bigStart.licenses)} licenses < 500 ms to healthy`,
      measured: `${fmt(bigStart.median)} ms median of ${bigStart.trials.length} (best ${
        fmt(bigStart.min)
      } ms)`,
      met: bigStart.median < 500,
    });
  }
  if (results.rss) {
    const r = results.rss;
    // The target is in MB; the measurement in MiB.
    const mb = (mib: number) => mib * 1.048576;
    list.push({
      name: `server RSS < 150 MB with ${fmt(r.licenses)} licenses and ${fmt(r.nodes)} active nodes`,
      measured: `${fmt(mb(r.afterLoad.rssMiB), 0)} MB after load (peak ${
        fmt(mb(r.afterLoad.hwmMiB), 0)
      } MB)`,
      met: mb(r.afterLoad.rssMiB) < 150,
    });
  }
  return list;
}

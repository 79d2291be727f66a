import assert from "node:assert/strict";
import { type LoadResult, mergeResults, percentiles } from "../../scripts/bench/load.ts";

Deno.test("percentiles() reads p50, p90 and p99 off a histogram of µs buckets, in ms", () => {
  // 100 answers: 50 at 1 ms, 40 at 2 ms, 9 at 5 ms, 1 at 40 ms.
  assert.deepEqual(percentiles({ "2000": 40, "1000": 50, "40000": 1, "5000": 9 }), {
    p50: 1,
    p90: 2,
    p99: 5,
  });
  assert.deepEqual(percentiles({ "3000": 1 }), { p50: 3, p90: 3, p99: 3 });
  const empty = percentiles({});
  assert.ok(Number.isNaN(empty.p50) && Number.isNaN(empty.p99));
});

Deno.test("mergeResults() adds runs up and derives rate, non-2xx and percentiles again", () => {
  const run = (over: Partial<LoadResult>): LoadResult => ({
    mode: "claim",
    connections: 2,
    requests: 0,
    seconds: 0,
    rate: 0,
    statuses: {},
    non2xx: 0,
    errors: {},
    p50: 0,
    p90: 0,
    p99: 0,
    max: 0,
    perConnection: [0, 0],
    hist: {},
    ...over,
  });
  const merged = mergeResults([
    run({
      requests: 90,
      seconds: 1,
      statuses: { "201": 90 },
      max: 3,
      perConnection: [45, 45],
      hist: { "1000": 90 },
    }),
    run({
      requests: 10,
      seconds: 1,
      statuses: { "201": 8, "410": 2 },
      errors: { timeout: 1 },
      max: 9,
      perConnection: [10, 0],
      hist: { "8000": 10 },
    }),
  ]);
  assert.deepEqual(merged, {
    mode: "claim",
    connections: 2,
    requests: 100,
    seconds: 2,
    rate: 50,
    statuses: { "201": 98, "410": 2 },
    non2xx: 2,
    errors: { timeout: 1 },
    p50: 1,
    p90: 1,
    p99: 8,
    max: 9,
    perConnection: [55, 45],
    hist: { "1000": 90, "8000": 10 },
  });
});

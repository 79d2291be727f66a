/**
 * The exposition format of `server/metrics_registry.ts`, checked by
 * Prometheus's own `promtool`: escaping of label values (pool names are any
 * text), histogram buckets, and stable series order.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Counter, Gauge, Histogram, Registry } from "../../server/metrics_registry.ts";
import { assertPromtoolAccepts, samples } from "./metrics_support.ts";

Deno.test("Registry.render() escapes label values and writes cumulative buckets", async () => {
  const registry = new Registry();
  const counter = registry.register(new Counter("x_total", "A counter.\nTwo lines.", ["pool"]));
  const gauge = registry.register(new Gauge("x_items", 'Items "quoted" \\ here.', ["pool"]));
  const histogram = registry.register(
    new Histogram("x_seconds", "A histogram.", { buckets: [0.1, 1], labelNames: ["route"] }),
  );
  const odd = 'we"ird\\pool\nname';
  counter.inc({ pool: odd }, 2);
  counter.inc({ pool: "" });
  gauge.set([{ labels: { pool: "b" }, value: 3 }, { labels: { pool: "a" }, value: 1.5 }]);
  for (const seconds of [0.05, 0.5, 5]) histogram.observe({ route: "/v1/health" }, seconds);

  const text = registry.render();
  await assertPromtoolAccepts(text);
  const values = samples(text);
  assert.equal(values.get('x_total{pool="we\\"ird\\\\pool\\nname"}'), 2);
  assert.equal(values.get('x_total{pool=""}'), 1);
  assert.deepEqual(
    text.split("\n").filter((line) => line.startsWith("x_items")),
    ['x_items{pool="a"} 1.5', 'x_items{pool="b"} 3'],
  );
  assert.equal(values.get('x_seconds_bucket{route="/v1/health",le="0.1"}'), 1);
  assert.equal(values.get('x_seconds_bucket{route="/v1/health",le="1"}'), 2);
  assert.equal(values.get('x_seconds_bucket{route="/v1/health",le="+Inf"}'), 3);
  assert.equal(values.get('x_seconds_count{route="/v1/health"}'), 3);
  assert.equal(values.get('x_seconds_sum{route="/v1/health"}'), 5.55);
  assert.match(text, /^# HELP x_total A counter\.\\nTwo lines\.$/m);
  assert.throws(() => counter.inc({ pool: "a" }, -1), RangeError);
  assert.throws(() => registry.register(new Counter("x_total", "Again.")), /registered twice/);
});

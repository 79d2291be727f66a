import assert from "node:assert/strict";
import {
  AUDIT_RETENTION_BOUNDS,
  CULL_INTERVAL_BOUNDS,
  parseDuration,
  parseEnvFlag,
  parsePort,
  parsePragma,
  TTL_BOUNDS,
  withinBounds,
} from "../../lib/config.ts";
import { UsageError } from "../../lib/errors.ts";

Deno.test("parseDuration() reads Go-style durations into milliseconds", () => {
  const cases: [string, number][] = [
    ["30s", 30_000],
    ["1m", 60_000],
    ["1h", 3_600_000],
    ["1h30m", 5_400_000],
    ["1.5h", 5_400_000],
    ["250ms", 250],
    ["2m15s", 135_000],
    [" 45s ", 45_000],
    ["30d", 2_592_000_000],
    ["1d12h", 129_600_000],
  ];
  for (const [text, ms] of cases) assert.equal(parseDuration(text), ms, text);
});

Deno.test("parseDuration() refuses what is not a duration", () => {
  for (const text of ["", "30", "s", "1w", "-5s", "1h 30m", "abc", "30sec"]) {
    assert.throws(() => parseDuration(text), UsageError, text);
  }
});

Deno.test("parseDuration() leaves absurd durations unbounded for the caller to refuse", () => {
  assert.equal(parseDuration("99999999999999999999h"), 3.6e26);
  assert.equal(parseDuration(`${"9".repeat(400)}s`), Infinity);
});

Deno.test("withinBounds() includes both ends and refuses NaN and Infinity", async (t) => {
  const cases: [string, typeof TTL_BOUNDS, string, string, number][] = [
    ["ttl", TTL_BOUNDS, "30s", "365d", 1000],
    ["cull interval", CULL_INTERVAL_BOUNDS, "100ms", "24h", 1],
    ["audit retention", AUDIT_RETENTION_BOUNDS, "1m", "36500d", 1000],
  ];
  for (const [name, bounds, min, max, step] of cases) {
    await t.step(name, () => {
      assert.deepEqual(
        [bounds.min, bounds.max, bounds.minMs, bounds.maxMs],
        [min, max, parseDuration(min), parseDuration(max)],
      );
      assert.equal(withinBounds(bounds.minMs, bounds), true);
      assert.equal(withinBounds(bounds.maxMs, bounds), true);
      assert.equal(withinBounds(bounds.minMs - step, bounds), false);
      assert.equal(withinBounds(bounds.maxMs + step, bounds), false);
      assert.equal(withinBounds(Infinity, bounds), false);
      assert.equal(withinBounds(NaN, bounds), false);
      // Every duration inside is a safe integer of ms, and of whole seconds.
      assert.ok(Number.isSafeInteger(bounds.maxMs) && Number.isSafeInteger(bounds.maxMs / step));
    });
  }
});

Deno.test("parseEnvFlag() treats 1/true/yes/on as set", () => {
  for (const value of ["1", "true", "TRUE", "yes", "on"]) assert.equal(parseEnvFlag(value), true);
  for (const value of [undefined, "", "0", "false", "no", "off"]) {
    assert.equal(parseEnvFlag(value), false);
  }
});

Deno.test("parsePragma() accepts key=value and refuses what could inject SQL", () => {
  assert.deepEqual(parsePragma("cache_size=-20000"), ["cache_size", "-20000"]);
  assert.deepEqual(parsePragma("synchronous=NORMAL"), ["synchronous", "NORMAL"]);
  for (const text of ["cache_size", "=1", "a=1; DROP TABLE licenses", "a b=1", "x='y'"]) {
    assert.throws(() => parsePragma(text), UsageError, text);
  }
});

Deno.test("parsePort() accepts 0 to 65535 and refuses the rest", () => {
  const cases: [string, number][] = [["0", 0], ["6349", 6349], ["65535", 65535], [" 80 ", 80]];
  for (const [text, port] of cases) assert.equal(parsePort(text), port, text);
  for (const text of ["", "65536", "-1", "80a", "1e3", "0x50", "8.0", "port"]) {
    assert.throws(() => parsePort(text), UsageError, text);
  }
});

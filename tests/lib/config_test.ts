import assert from "node:assert/strict";
import { parseDuration, parseEnvFlag, parsePort, parsePragma } from "../../lib/config.ts";
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

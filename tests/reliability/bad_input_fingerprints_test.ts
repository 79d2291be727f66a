/**
 * Bad input, fingerprints: odd, long, encoded and invalid fingerprints through
 * fetch (PUT and DELETE), and request targets sent as is over a raw socket.
 * Valid ones are claimed, heartbeated and released and stored exactly as
 * decoded; invalid ones get the reference Relay's 4xx and JSON body.
 *
 * @module
 */

import { BACKENDS } from "./backends.ts";
import { badInputServer, enc, ERR } from "./bad_input_fixture.ts";
import { bytes } from "./raw_http.ts";

/** Valid fingerprints sent through fetch: [label, path segment as sent, fingerprint stored]. */
const VALID_FINGERPRINTS: [string, string, string][] = [
  ["1 char", "z", "z"],
  ["exactly 256 ASCII characters", "f".repeat(256), "f".repeat(256)],
  ["256 two-byte characters", enc("é".repeat(256)), "é".repeat(256)],
  ["256 three-byte characters", enc("日".repeat(256)), "日".repeat(256)],
  ["256 four-byte characters (surrogate pairs)", enc("😀".repeat(256)), "😀".repeat(256)],
  ["%2F alone", "%2F", "/"],
  ["%2F inside", "a%2Fb", "a/b"],
  ["%2f%2f lowercase", "%2f%2f", "//"],
  ["encoded traversal", "%2E%2E%2Fetc%2Fpasswd", "../etc/passwd"],
  ["a%2F..%2Fb", "a%2F..%2Fb", "a/../b"],
  ["three dots", "...", "..."],
  ["..a", "..a", "..a"],
  ["apostrophe, raw", "'", "'"],
  ["apostrophe, %27", "%27x", "'x"],
  ["double quote, %22", "%22", '"'],
  ["backtick, %60", "%60", "`"],
  ["SQL: ' OR 1=1 --", enc("' OR 1=1 --"), "' OR 1=1 --"],
  [
    'SQL: "; DROP TABLE licenses; --',
    enc('"; DROP TABLE licenses; --'),
    '"; DROP TABLE licenses; --',
  ],
  ["SQL: %27%3B%20DELETE%20FROM%20nodes", "%27%3B%20DELETE%20FROM%20nodes", "'; DELETE FROM nodes"],
  [
    "SQL: UPDATE",
    enc("1; UPDATE licenses SET node_id = NULL; --"),
    "1; UPDATE licenses SET node_id = NULL; --",
  ],
  [
    "SQL: UNION",
    enc("x' UNION SELECT key FROM licenses --"),
    "x' UNION SELECT key FROM licenses --",
  ],
  [
    "SQL: Robert'); DROP TABLE nodes;--",
    enc("Robert'); DROP TABLE nodes;--"),
    "Robert'); DROP TABLE nodes;--",
  ],
  ["RTL override U+202E", enc("abc\u202edef"), "abc\u202edef"],
  ["emoji", enc("😀"), "😀"],
  ["ZWJ sequence", enc("👨‍👩‍👧"), "👨‍👩‍👧"],
  ["zero-width space", enc("a\u200bb"), "a\u200bb"],
  ["byte order mark", enc("\ufeffbom"), "\ufeffbom"],
  ["combining accent", enc("e\u0301"), "e\u0301"],
  ["line separator U+2028", enc("a\u2028b"), "a\u2028b"],
  ["highest code point U+10FFFF", enc("\u{10ffff}"), "\u{10ffff}"],
  // A C1 control: not in the C0/DEL set the server refuses (see the report).
  ["C1 control NEL, %C2%85", "%C2%85", "\u0085"],
  ["plus sign stays a plus", "a+b", "a+b"],
  ["%2B", "%2B", "+"],
  ["leading and trailing spaces", "%20a%20", " a "],
  ["percent sign, %25", "%25", "%"],
  ["double-encoded %252F", "%252F", "%2F"],
  ["double-encoded NUL %2500", "%2500", "%00"],
  ["question mark, %3F", "q%3Fx%3D1", "q?x=1"],
  ["hash, %23", "h%23x", "h#x"],
  ["backslash, %5C", "%5C", "\\"],
  ["sub-delimiters", "a;b=c&d,e!$()*", "a;b=c&d,e!$()*"],
  ["JNDI lookup text", enc("${jndi:ldap://127.0.0.1/x}"), "${jndi:ldap://127.0.0.1/x}"],
  ["HTML", enc("<script>alert(1)</script>"), "<script>alert(1)</script>"],
  ["JSON", enc('{"fingerprint":null}'), '{"fingerprint":null}'],
  ["escaped newline text", enc("\\n\\r\\0"), "\\n\\r\\0"],
];

/** Fingerprints refused through fetch: [label, path as sent, status, body] (PUT and DELETE). */
const BAD_FINGERPRINTS: [string, string, number, string][] = [
  ["empty", "/v1/nodes/", 404, ERR.notFound],
  ["a single slash", "/v1/nodes//", 404, ERR.notFound],
  ["257 ASCII characters", `/v1/nodes/${"f".repeat(257)}`, 400, ERR.tooLong],
  ["257 three-byte characters", `/v1/nodes/${enc("日".repeat(257))}`, 400, ERR.tooLong],
  ["257 four-byte characters", `/v1/nodes/${enc("😀".repeat(257))}`, 400, ERR.tooLong],
  ["10 kB path", `/v1/nodes/${"p".repeat(10_240)}`, 400, ERR.tooLong],
  ["10 kB once decoded (%41 × 10240)", `/v1/nodes/${"%41".repeat(10_240)}`, 400, ERR.tooLong],
  // fetch normalizes these dot segments itself; the raw-socket table sends them as is.
  ["..", "/v1/nodes/..", 404, ERR.notFound],
  ["%2E%2E", "/v1/nodes/%2E%2E", 404, ERR.notFound],
  ["NUL alone", "/v1/nodes/%00", 400, ERR.invalidFingerprint],
  ["DEL alone", "/v1/nodes/%7F", 400, ERR.invalidFingerprint],
  ...Array.from({ length: 32 }, (_, code): [string, string, number, string] => {
    const hex = code.toString(16).toUpperCase().padStart(2, "0");
    return [`control %${hex}`, `/v1/nodes/x%${hex}y`, 400, ERR.invalidFingerprint];
  }),
  ["control %7F", "/v1/nodes/x%7Fy", 400, ERR.invalidFingerprint],
  ["invalid UTF-8 %FF", "/v1/nodes/%FF", 400, ERR.invalidFingerprint],
  ["invalid UTF-8 %FE", "/v1/nodes/a%FEb", 400, ERR.invalidFingerprint],
  ["invalid UTF-8 %C3%28", "/v1/nodes/%C3%28", 400, ERR.invalidFingerprint],
  ["lone high surrogate %ED%A0%80", "/v1/nodes/%ED%A0%80", 400, ERR.invalidFingerprint],
  ["lone low surrogate %ED%BF%BF", "/v1/nodes/%ED%BF%BF", 400, ERR.invalidFingerprint],
  ["overlong slash %C0%AF", "/v1/nodes/%C0%AF", 400, ERR.invalidFingerprint],
  ["overlong slash %E0%80%AF", "/v1/nodes/%E0%80%AF", 400, ERR.invalidFingerprint],
  ["beyond U+10FFFF %F4%90%80%80", "/v1/nodes/%F4%90%80%80", 400, ERR.invalidFingerprint],
  ["lone continuation byte %80", "/v1/nodes/%80", 400, ERR.invalidFingerprint],
  ["truncated sequence a%C3", "/v1/nodes/a%C3", 400, ERR.invalidFingerprint],
  ["truncated emoji %F0%9F%98", "/v1/nodes/%F0%9F%98", 400, ERR.invalidFingerprint],
  ["five-byte form %F8%88%80%80%80", "/v1/nodes/%F8%88%80%80%80", 400, ERR.invalidFingerprint],
  ["malformed %", "/v1/nodes/%", 400, ERR.invalidFingerprint],
  ["malformed %G1", "/v1/nodes/%G1", 400, ERR.invalidFingerprint],
  ["malformed %2", "/v1/nodes/%2", 400, ERR.invalidFingerprint],
  ["malformed a%", "/v1/nodes/a%", 400, ERR.invalidFingerprint],
  ["malformed %%", "/v1/nodes/%%", 400, ERR.invalidFingerprint],
  ["malformed %%41", "/v1/nodes/%%41", 400, ERR.invalidFingerprint],
  ["IIS-style %u0041", "/v1/nodes/%u0041", 400, ERR.invalidFingerprint],
];

/** Request targets sent as is over a raw socket: [label, target bytes, expectation]. */
type RawTargetExpect =
  | { kind: "valid"; stored: string }
  | { kind: "json"; status: number; body: string }
  /** Refused by the HTTP parser: 400 without a JSON body, or the connection closed. */
  | { kind: "parser" };
const RAW_TARGETS: [string, Uint8Array, RawTargetExpect][] = [
  ["raw ..", bytes("/v1/nodes/.."), { kind: "json", status: 404, body: ERR.notFound }],
  ["raw %2E%2E", bytes("/v1/nodes/%2E%2E"), { kind: "json", status: 404, body: ERR.notFound }],
  ["raw %2e", bytes("/v1/nodes/%2e"), { kind: "json", status: 404, body: ERR.notFound }],
  ["raw .", bytes("/v1/nodes/."), { kind: "json", status: 404, body: ERR.notFound }],
  ["raw .%2E", bytes("/v1/nodes/.%2E"), { kind: "json", status: 404, body: ERR.notFound }],
  ["raw ../.. escaping the prefix", bytes("/v1/nodes/../../v1/health"), {
    kind: "json",
    status: 405,
    body: ERR.methodNotAllowed,
  }],
  ["raw x/../dotdot-b resolves to dotdot-b", bytes("/v1/nodes/x/../dotdot-b"), {
    kind: "valid",
    stored: "dotdot-b",
  }],
  ["raw double quote", bytes('/v1/nodes/q"q'), { kind: "valid", stored: 'q"q' }],
  ["raw <>", bytes("/v1/nodes/<x>"), { kind: "valid", stored: "<x>" }],
  ["raw `{}|^", bytes("/v1/nodes/b`{}|^"), { kind: "valid", stored: "b`{}|^" }],
  ["raw UTF-8 bytes", bytes("/v1/nodes/café-raw"), { kind: "valid", stored: "café-raw" }],
  ["raw 10 kB path", bytes(`/v1/nodes/${"r".repeat(10_240)}`), {
    kind: "json",
    status: 400,
    body: ERR.tooLong,
  }],
  ["raw backslash (a URL treats it as /)", bytes("/v1/nodes/a\\b"), {
    kind: "json",
    status: 404,
    body: ERR.notFound,
  }],
  ["raw space", bytes("/v1/nodes/a b"), { kind: "parser" }],
  ["raw tab", bytes("/v1/nodes/a\tb"), { kind: "parser" }],
  ["raw NUL", bytes("/v1/nodes/a", [0], "b"), { kind: "parser" }],
  ["raw 0x01", bytes("/v1/nodes/a", [1], "b"), { kind: "parser" }],
  ["raw DEL", bytes("/v1/nodes/a", [0x7f], "b"), { kind: "parser" }],
  ["raw Latin-1 byte 0xE9 (invalid UTF-8)", bytes("/v1/nodes/caf", [0xe9]), { kind: "parser" }],
  ["raw 100 kB path", bytes(`/v1/nodes/${"r".repeat(100_000)}`), { kind: "parser" }],
];

for (const backend of BACKENDS) {
  Deno.test(`odd fingerprints never get a 5xx, a crash or a hang, and the server stays healthy (${backend})`, async (t) => {
    await using fx = await badInputServer(backend);

    await t.step("fingerprints (PUT and DELETE)", async () => {
      const group = fx.group("fingerprints");
      for (const [label, segment, stored] of VALID_FINGERPRINTS) {
        await fx.claimCycle(group, label, `/v1/nodes/${segment}`, stored);
      }
      await fx.checkHealth(group, "valid fingerprints");

      for (const [label, path, status, body] of BAD_FINGERPRINTS) {
        for (const method of ["PUT", "DELETE"]) {
          const reply = await fx.send(method, path);
          group.status(`${label}: ${method}`, reply.status, [status]);
          group.eq(`${label}: ${method} body`, reply.body, body);
          group.eq(
            `${label}: ${method} Content-Type`,
            reply.headers.get("Content-Type"),
            "application/json",
          );
        }
      }
      await fx.checkHealth(group, "bad fingerprints");

      for (const [label, target, expect] of RAW_TARGETS) {
        const sendRaw = (method: string) =>
          fx.raw(
            bytes(`${method} `, target, " HTTP/1.1\r\nHost: relay\r\nContent-Length: 0\r\n\r\n"),
          );
        if (expect.kind === "valid") {
          const created = await sendRaw("PUT");
          if (group.raw(`${label}: PUT`, created, [201])) fx.granted.add(expect.stored);
          group.raw(`${label}: DELETE`, await sendRaw("DELETE"), [204]);
          continue;
        }
        for (const method of ["PUT", "DELETE"]) {
          const result = await sendRaw(method);
          if (expect.kind === "json") {
            group.raw(`${label}: ${method}`, result, [expect.status]);
            group.eq(`${label}: ${method} body`, result.responses[0]?.body ?? null, expect.body);
          } else {
            group.raw(`${label}: ${method}`, result, [400, 414, 431], true);
          }
        }
      }
      await fx.checkHealth(group, "raw request targets");

      // The database keeps every license, and each accepted fingerprint is stored as decoded.
      group.eq(
        "licenses intact",
        (await fx.rows<{ key: string }>("SELECT key FROM licenses")).map((row) => row.key).sort(),
        fx.allKeys,
      );
      for (const [label, , stored] of VALID_FINGERPRINTS) {
        const rows = await fx.rows<{ fingerprint: string }>(
          "SELECT fingerprint FROM nodes WHERE fingerprint = ?",
          stored,
        );
        group.eq(`${label}: stored exactly once, as decoded`, rows.map((row) => row.fingerprint), [
          stored,
        ]);
      }
      group.finish();
    });

    await fx.closingSteps(t, { fingerprints: 800 });
  });
}

/**
 * The OpenAPI document itself: the served JSON is the YAML source's, it is a
 * valid OpenAPI 3.1 document, and it cannot forget what the code has: every
 * route of `server/app.ts`'s table and every error text of
 * `server/errors.ts`. (`openapi_responses_test.ts` checks real answers
 * against it.)
 *
 * @module
 */

import assert from "node:assert/strict";
import SwaggerParser from "@apidevtools/swagger-parser";
import { API_ERRORS } from "../../server/errors.ts";
import { OPENAPI_DOCUMENT } from "../../server/openapi.ts";
import { OPENAPI_JSON, OPENAPI_YAML, renderOpenApiJson } from "../../scripts/openapi.ts";
import { ApiSpec } from "./openapi_support.ts";

const root = new URL("../../", import.meta.url);

/** Every value of `key` anywhere in `value`. */
function valuesOf(value: unknown, key: string): unknown[] {
  if (Array.isArray(value)) return value.flatMap((item) => valuesOf(item, key));
  if (value === null || typeof value !== "object") return [];
  return Object.entries(value).flatMap(([name, item]) =>
    name === key ? [item, ...valuesOf(item, key)] : valuesOf(item, key)
  );
}

/** `METHOD /path` of every operation, path parameters written `{}`. */
function documentedRoutes(): Set<string> {
  const routes = new Set<string>();
  const paths = OPENAPI_DOCUMENT.paths as Record<string, Record<string, unknown>>;
  for (const [template, item] of Object.entries(paths)) {
    for (const method of ["get", "put", "post", "delete", "patch", "head", "options"]) {
      if (item[method]) {
        routes.add(`${method.toUpperCase()} ${template.replace(/\{[^}]*\}/g, "{}")}`);
      }
    }
  }
  return routes;
}

Deno.test("server/openapi.json is server/openapi.yaml as JSON (deno task openapi writes it)", async () => {
  const yaml = await Deno.readTextFile(new URL(OPENAPI_YAML, root));
  const json = await Deno.readTextFile(new URL(OPENAPI_JSON, root));
  assert.equal(json, renderOpenApiJson(yaml), "run deno task openapi");
  assert.deepEqual(OPENAPI_DOCUMENT, JSON.parse(json));
});

Deno.test("the OpenAPI document is valid OpenAPI 3.1 and names Relay's version", async () => {
  const api = await SwaggerParser.validate(structuredClone(OPENAPI_DOCUMENT) as never);
  assert.match(String((api as { openapi?: string }).openapi), /^3\.1\.\d+$/);
  const denoJson = JSON.parse(await Deno.readTextFile(new URL("deno.json", root)));
  assert.equal(api.info.version, denoJson.version);
  // Every schema compiles under JSON Schema 2020-12 (strict: no unknown keywords).
  assert.ok((await ApiSpec.load()).compileAll() > 100);
});

Deno.test("the OpenAPI document has every route of server/app.ts's table", async () => {
  const source = await Deno.readTextFile(new URL("server/app.ts", root));
  // A row's first cell: `GET /v1/health`, or several methods: `PUT`/`GET`/`DELETE /v1/users/{email}`.
  const table = [...source.matchAll(/^ \* \| ([^|]*\/[^|]*)\|/gm)].flatMap(([, cell]) => {
    const path = /(\/[^`\s]+)`/.exec(cell)?.[1] ?? "";
    return [...cell.matchAll(/\b(GET|PUT|POST|DELETE|PATCH|HEAD|OPTIONS)\b/g)].map(([method]) =>
      `${method} ${path.replace(/\{[^}]*\}/g, "{}")}`
    );
  });
  assert.ok(table.length >= 7, `the table of server/app.ts was read: ${table.join(", ")}`);
  const documented = documentedRoutes();
  assert.deepEqual(table.filter((route) => !documented.has(route)), [], "routes not documented");
});

Deno.test("the OpenAPI document has every error text of server/errors.ts", () => {
  const texts = [...valuesOf(OPENAPI_DOCUMENT, "const"), ...valuesOf(OPENAPI_DOCUMENT, "enum")]
    .flat();
  const patterns = valuesOf(OPENAPI_DOCUMENT, "pattern").map((p) => new RegExp(String(p)));
  const missing = Object.entries(API_ERRORS).filter(([, { message }]) =>
    !texts.includes(message) &&
    !patterns.some((p) => p.source.startsWith("^") && p.test(`${message}: x`))
  );
  assert.deepEqual(missing.map(([kind]) => kind), []);
});

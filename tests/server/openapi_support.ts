/**
 * Checks real answers of the server against its OpenAPI document
 * (`server/openapi.yaml`, served as `server/openapi.json`): the status is one
 * the operation lists, every header the answer carries is one the response
 * lists (and the required ones are there), each header value and the body
 * match their schemas (JSON Schema 2020-12, with ajv), and the content type
 * is the one the response names.
 *
 * A path the document does not list must be answered as its `NotFound`
 * response, a method a listed path does not have as `MethodNotAllowed`, with
 * `Allow` naming exactly the methods the document lists for the path.
 *
 * @module
 */

import assert from "node:assert/strict";
import SwaggerParser from "@apidevtools/swagger-parser";
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import addFormatsModule from "ajv-formats";
import { OPENAPI_DOCUMENT } from "../../server/openapi.ts";

/** One answer, as it came off the wire. */
export interface ObservedAnswer {
  method: string;
  /** The document's path template (`/v1/nodes/{fingerprint}`); null: a path it does not list. */
  template: string | null;
  status: number;
  headers: Headers;
  /** The raw body ("" when none). */
  body: string;
}

/** Headers of the transport, not of the API: the document does not list them. */
const TRANSPORT_HEADERS = new Set([
  "connection",
  "content-encoding",
  "content-length",
  "content-type",
  "date",
  "keep-alive",
  "transfer-encoding",
  "vary",
]);

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"] as const;

interface Schema {
  type?: string | string[];
  [key: string]: unknown;
}
interface HeaderObject {
  required?: boolean;
  schema: Schema;
}
interface ResponseObject {
  headers?: Record<string, HeaderObject>;
  content?: Record<string, { schema: Schema }>;
}
interface Operation {
  responses: Record<string, ResponseObject>;
}
type PathItem = Partial<Record<(typeof METHODS)[number], Operation>>;
interface Document {
  paths: Record<string, PathItem>;
  components: { responses: Record<string, ResponseObject> };
}

// ajv-formats is CommonJS: its function is the default export, or that export's `default`.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ??
  addFormatsModule) as (ajv: Ajv2020) => Ajv2020;

/** The OpenAPI document, dereferenced, with a validator for each schema in it. */
export class ApiSpec {
  readonly #document: Document;
  readonly #ajv: Ajv2020;
  readonly #validators = new Map<Schema, ValidateFunction>();

  private constructor(document: Document) {
    this.#document = document;
    this.#ajv = addFormats(new Ajv2020({ strict: true, allErrors: true }));
  }

  /** The document the server serves, validated as OpenAPI 3.1, all `$ref`s resolved. */
  static async load(): Promise<ApiSpec> {
    // The parser changes what it is given: hand it a copy.
    const copy = structuredClone(OPENAPI_DOCUMENT) as Record<string, unknown>;
    // deno-lint-ignore no-explicit-any
    const document = await SwaggerParser.validate(copy as any);
    return new ApiSpec(document as unknown as Document);
  }

  /**
   * Every response the document lists, as `"METHOD template status"`
   * (`"PUT /v1/nodes/{fingerprint} 201"`).
   */
  responses(): string[] {
    const keys: string[] = [];
    for (const [template, item] of Object.entries(this.#document.paths)) {
      for (const method of METHODS) {
        for (const status of Object.keys(item[method]?.responses ?? {})) {
          keys.push(`${method.toUpperCase()} ${template} ${status}`);
        }
      }
    }
    return keys;
  }

  /**
   * Compiles the schema of every header and body of every response (ajv in
   * strict mode refuses unknown keywords); returns how many.
   */
  compileAll(): number {
    const responses = [
      ...Object.values(this.#document.paths).flatMap((item) =>
        METHODS.flatMap((method) => Object.values(item[method]?.responses ?? {}))
      ),
      ...Object.values(this.#document.components.responses),
    ];
    const schemas = responses.flatMap((response) => [
      ...Object.values(response.headers ?? {}).map((header) => header.schema),
      ...Object.values(response.content ?? {}).map((media) => media.schema),
    ]);
    for (const schema of schemas) this.#validator(schema);
    return schemas.length;
  }

  /**
   * Asserts that `answer` is one the document describes; returns which
   * (`"METHOD template status"`, or `"unlisted path 404"`,
   * `"unlisted method on template 405"`).
   */
  assertConforms(answer: ObservedAnswer): string {
    const where = `${answer.method} ${answer.template ?? "(unlisted path)"} ${answer.status}`;
    const [key, response, getResponse] = this.#responseFor(answer, where);
    this.#assertHeaders(answer, response, where);
    this.#assertBody(answer, response, getResponse, where);
    return key;
  }

  #responseFor(
    answer: ObservedAnswer,
    where: string,
  ): [string, ResponseObject, ResponseObject | undefined] {
    const components = this.#document.components.responses;
    if (answer.template === null) {
      assert.equal(answer.status, 404, `${where}: a path the document does not list`);
      return ["unlisted path 404", components.NotFound, undefined];
    }
    const item = this.#document.paths[answer.template];
    assert.ok(item, `${where}: the document has no path ${answer.template}`);
    const method = answer.method.toLowerCase() as (typeof METHODS)[number];
    const operation = item[method];
    if (operation === undefined) {
      assert.equal(answer.status, 405, `${where}: a method the document does not list`);
      const listed = METHODS.filter((m) => item[m]).map((m) => m.toUpperCase()).sort();
      const allowed = (answer.headers.get("allow") ?? "").split(",").map((m) => m.trim()).sort();
      assert.deepEqual(allowed, listed, `${where}: Allow names the methods the document lists`);
      return [`unlisted method on ${answer.template} 405`, components.MethodNotAllowed, undefined];
    }
    const response = operation.responses[String(answer.status)];
    assert.ok(response, `${where}: status ${answer.status} is not listed for the operation`);
    const get = method === "head" ? item.get?.responses[String(answer.status)] : undefined;
    return [`${answer.method} ${answer.template} ${answer.status}`, response, get];
  }

  #assertHeaders(answer: ObservedAnswer, response: ResponseObject, where: string): void {
    const listed = new Map(
      Object.entries(response.headers ?? {}).map(([name, header]) => [name.toLowerCase(), header]),
    );
    for (const [name, header] of listed) {
      if (header.required) {
        assert.ok(answer.headers.has(name), `${where}: required header ${name} is missing`);
      }
    }
    for (const [name, value] of answer.headers) {
      if (TRANSPORT_HEADERS.has(name)) continue;
      const header = listed.get(name);
      assert.ok(header, `${where}: header ${name} is not listed for the response`);
      this.#assertValid(
        header.schema,
        headerValue(header.schema, value),
        `${where}: header ${name}`,
      );
    }
  }

  #assertBody(
    answer: ObservedAnswer,
    response: ResponseObject,
    getResponse: ResponseObject | undefined,
    where: string,
  ): void {
    const contentType = answer.headers.get("content-type");
    if (answer.method === "HEAD") {
      assert.equal(answer.body, "", `${where}: a HEAD answer has no body`);
      // HEAD sends GET's headers: its content type is the one GET names.
      const types = Object.keys({ ...response.content, ...getResponse?.content });
      if (contentType !== null) {
        assert.ok(types.includes(contentType), `${where}: content type ${contentType}`);
      }
      return;
    }
    const content = response.content;
    if (content === undefined) {
      assert.equal(answer.body, "", `${where}: the response has no body`);
      assert.equal(contentType, null, `${where}: no content type without a body`);
      return;
    }
    assert.ok(
      contentType !== null && contentType in content,
      `${where}: content type ${contentType} is not one of ${Object.keys(content).join(", ")}`,
    );
    let body: unknown = answer.body;
    if (contentType === "application/json") {
      body = JSON.parse(answer.body);
      assert.equal(answer.body, JSON.stringify(body) + "\n", `${where}: compact JSON, a newline`);
    }
    this.#assertValid(content[contentType].schema, body, `${where}: body`);
  }

  #validator(schema: Schema): ValidateFunction {
    let validate = this.#validators.get(schema);
    if (!validate) {
      validate = this.#ajv.compile(schema);
      this.#validators.set(schema, validate);
    }
    return validate;
  }

  #assertValid(schema: Schema, value: unknown, what: string): void {
    const validate = this.#validator(schema);
    assert.ok(
      validate(value),
      `${what} ${JSON.stringify(value)} does not match its schema: ` +
        this.#ajv.errorsText(validate.errors),
    );
  }
}

/** A header's text as its schema types it (OpenAPI's `simple` style): integers are numbers. */
function headerValue(schema: Schema, text: string): unknown {
  const types = [schema.type ?? []].flat();
  if (types.includes("integer") && /^-?\d+$/.test(text)) return Number(text);
  return text;
}

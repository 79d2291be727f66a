/**
 * `GET /v1/openapi.json`: the API's OpenAPI 3.1 document, open to all (like
 * `/v1/health`). The document is written in `server/openapi.yaml`;
 * `deno task openapi` turns it into the JSON module imported here, so
 * `deno compile` embeds it and the binary reads no file at run time.
 *
 * @module
 */

import document from "./openapi.json" with { type: "json" };
import { errorReply, type Reply } from "./errors.ts";

/** Where the document is served. */
export const OPENAPI_PATH = "/v1/openapi.json";

/** The document, as the server serves it (parsed). */
export const OPENAPI_DOCUMENT: Readonly<Record<string, unknown>> = document;

/** Compact JSON and a newline, as every JSON body of the API; rendered once. */
let rendered: string | undefined;

/** The answer to `request` on {@link OPENAPI_PATH}: the document, or a 405. */
export function openApiReply(
  method: string,
): Reply & { text?: { body: string; contentType: string } } {
  if (method !== "GET" && method !== "HEAD") {
    return errorReply("method_not_allowed", { headers: { Allow: "GET, HEAD" } });
  }
  rendered ??= JSON.stringify(document) + "\n";
  return { status: 200, body: null, text: { body: rendered, contentType: "application/json" } };
}

/**
 * The ingest API's OpenAPI document (`GET /openapi.json`). The bodies are
 * the event contract's TypeBox schemas (api/events/types.ts); they only
 * document: fastify's validator is off and the contract's decoders validate
 * (api/events/decode.ts), so a 400 says exactly what the stream would say.
 */
import swagger from "@fastify/swagger";
import { type TSchema, Type } from "@sinclair/typebox";
import { ID_MAX_CHARS } from "../../api/events/ids.ts";
import type { App } from "../runtime/server.ts";

export const ErrorSchema = Type.Object({
  error: Type.String({
    description:
      "Machine-readable code: bad_request, unauthorized, forbidden, payload_too_large, overloaded, unavailable",
  }),
  message: Type.String({ description: "What is wrong and how to fix it" }),
  details: Type.Optional(
    Type.Array(Type.Object({ index: Type.Optional(Type.Integer()), message: Type.String() }), {
      description: "One entry per invalid record (batch: with its index)",
    }),
  ),
});

export const BidAcceptedResponse = Type.Object({
  bid_id: Type.String({ description: "The bid's id (assigned when the request had none)" }),
  received_at: Type.String({ description: "When ingest received the bid (RFC 3339)" }),
});

/** TypeBox schemas carry `$id`s; inline copies without them keep the OpenAPI document self-contained. */
export function inline(schema: TSchema): TSchema {
  const { $id: _id, ...rest } = schema;
  return rest as TSchema;
}

/** The answers of a write route: 202 with `ok`, or an error body. */
export function responses(ok: TSchema) {
  return {
    202: ok,
    400: ErrorSchema,
    401: ErrorSchema,
    403: ErrorSchema,
    413: ErrorSchema,
    503: ErrorSchema,
  };
}

/** The id rule, for the API description (docs/events.md#identifiers). */
const ID_RULE = `Ids (auction_id, bid_id, bidder_id, item_id, seller_id, user_id) are opaque text: 1-${ID_MAX_CHARS} printable Unicode characters (code points; e.g. "d*elmer", "Jürgen", "名前"), no control characters (U+0000-U+001F, U+007F-U+009F), no U+2028/U+2029, no bidirectional controls (U+202A-U+202E, U+2066-U+2069), no lone surrogates, no leading or trailing white space. They are kept exactly as sent (no trimming, no Unicode normalisation); send JSON as UTF-8.`;

/** Collects the routes registered after it into the document served at `/openapi.json`. */
export async function registerOpenApi(app: App): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: "3.0.3",
      info: {
        title: "Gavel ingest API",
        version: "1.0.0",
        description: `Accepts bids, auctions and users and writes them to the pipeline's Kafka topics. A 202 means the broker acknowledged the record (acks=all); business rules (unknown auction, currency, duplicates, minimum) are checked downstream and rejected bids land in the dead-letter topic. ${ID_RULE}`,
      },
      components: {
        securitySchemes: {
          bearer: { type: "http", scheme: "bearer" },
          apiKey: { type: "apiKey", in: "header", name: "X-API-Key" },
        },
      },
      security: [{ bearer: [] }, { apiKey: [] }],
    },
  });
  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());
}

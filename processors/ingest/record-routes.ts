/**
 * POST /v1/auctions and POST /v1/users: one record each, decoded once with
 * the contract's decoder of its event (the `schema` field may be omitted:
 * the current version is assumed) and produced keyed by its id, so the
 * compacted topic keeps the latest record of each auction or user.
 */
import { type TObject, Type } from "@sinclair/typebox";
import { type Decoded, decodeAuction, decodeUser } from "../../api/events/decode.ts";
import { AuctionEventSchema, SCHEMA, UserEventSchema } from "../../api/events/types.ts";
import type { App } from "../runtime/server.ts";
import type { RouteContext } from "./app.ts";
import type { Scope } from "./auth.ts";
import { fail } from "./errors.ts";
import { inline, responses } from "./openapi.ts";

interface RecordRoute<T> {
  readonly url: string;
  readonly scope: Scope;
  readonly summary: string;
  /** The event's schema (documentation) and its current id (assumed when the body has none). */
  readonly schema: TObject;
  readonly schemaId: string;
  readonly decode: (body: unknown) => Decoded<T>;
  readonly topic: string;
  /** The id field: the Kafka key and the answer. */
  readonly idField: keyof T & string;
}

/**
 * The body as JSON with `schema` filled in when absent, or why it is not
 * JSON. A body that is not an object is passed on for the decoder to name.
 */
function withDefaultSchema(
  body: unknown,
  schema: string,
): { ok: true; value: unknown } | { ok: false; detail: string } {
  let v = body;
  if (Buffer.isBuffer(v)) {
    try {
      v = JSON.parse(v.toString("utf8"));
    } catch (err) {
      return { ok: false, detail: `record: not valid JSON (${(err as Error).message})` };
    }
  }
  if (v !== null && typeof v === "object" && !Array.isArray(v) && !("schema" in v)) v = { schema, ...v };
  return { ok: true, value: v };
}

function recordRoute<T>(app: App, ctx: RouteContext, r: RecordRoute<T>): void {
  app.post(
    r.url,
    {
      bodyLimit: ctx.limits.maxRecordBytes,
      preHandler: ctx.requireScope(r.scope),
      schema: {
        summary: r.summary,
        description: "The `schema` field may be omitted (the current version is assumed).",
        body: inline(r.schema),
        response: responses(Type.Object({ [r.idField]: Type.String() })),
      },
    },
    async (req, reply) => {
      const body = withDefaultSchema(req.body, r.schemaId);
      if (!body.ok) return fail(reply, 400, "bad_request", body.detail);
      const d = r.decode(body.value);
      if (!d.ok) return fail(reply, 400, "bad_request", d.detail);
      const id = String(d.value[r.idField]);
      return ctx.publish(
        reply,
        [{ topic: r.topic, message: { key: id, value: JSON.stringify(d.value) } }],
        () => ({
          [r.idField]: id,
        }),
      );
    },
  );
}

export function auctionRoute(app: App, ctx: RouteContext): void {
  recordRoute(app, ctx, {
    url: "/v1/auctions",
    scope: "auctions",
    summary: "Create or update an auction",
    schema: AuctionEventSchema,
    schemaId: SCHEMA.auction,
    decode: decodeAuction,
    topic: ctx.topics.auctions,
    idField: "auction_id",
  });
}

export function userRoute(app: App, ctx: RouteContext): void {
  recordRoute(app, ctx, {
    url: "/v1/users",
    scope: "users",
    summary: "Create or update a user",
    schema: UserEventSchema,
    schemaId: SCHEMA.user,
    decode: decodeUser,
    topic: ctx.topics.users,
    idField: "user_id",
  });
}

/**
 * POST /v1/bids and POST /v1/bids:batch: each bid decoded once with the
 * contract's submission decoder (`decodeBidSubmission`: schema, ids, money,
 * currency, clock skew), completed by ingest (`bid_id` when absent,
 * `received_at`, `source`) and produced keyed by `auction_id`.
 */
import { randomUUID } from "node:crypto";
import { Type } from "@sinclair/typebox";
import { bidFromSubmission, decodeBidSubmission } from "../../api/events/decode.ts";
import { quoteId } from "../../api/events/ids.ts";
import { type BidEvent, BidSubmissionSchema } from "../../api/events/types.ts";
import type { App } from "../runtime/server.ts";
import type { RouteContext } from "./app.ts";
import { fail } from "./errors.ts";
import { BidAcceptedResponse, inline, responses } from "./openapi.ts";
import type { Outgoing } from "./publish.ts";

export function bidRoutes(app: App, ctx: RouteContext): void {
  const { limits } = ctx;
  const decodeOptions = { maxFutureSkewMs: limits.maxFutureSkewMs };
  const bidRecord = (bid: BidEvent): Outgoing => ({
    topic: ctx.topics.bids,
    message: { key: bid.auction_id, value: JSON.stringify(bid) },
    bidSource: bid.source,
  });
  const accepted = (b: BidEvent) => ({ bid_id: b.bid_id, received_at: b.received_at });

  app.post(
    "/v1/bids",
    {
      bodyLimit: limits.maxRecordBytes,
      preHandler: ctx.requireScope("bids"),
      schema: {
        summary: "Submit one bid",
        description:
          "Validates the bid (schema, ids, integer minor units > 0, ISO 4217 currency, placed_at not in the future beyond the allowed skew), assigns bid_id when absent and received_at, and answers 202 once the broker acknowledged it. A 400 names the field, what is wrong and how to fix it (e.g. `bidder_id: ... got a control character U+0009 (tab) at position 3`).",
        body: inline(BidSubmissionSchema),
        response: responses(BidAcceptedResponse),
      },
    },
    async (req, reply) => {
      const receivedAt = ctx.now();
      const d = decodeBidSubmission(req.body as Buffer, { ...decodeOptions, nowMs: receivedAt });
      if (!d.ok) return fail(reply, 400, "bad_request", d.detail);
      const bid = bidFromSubmission(d.value, receivedAt, randomUUID);
      return ctx.publish(reply, [bidRecord(bid)], () => accepted(bid));
    },
  );

  // "::" is fastify's escape for a literal colon (a single ":" starts a path parameter).
  app.post(
    "/v1/bids::batch",
    {
      bodyLimit: limits.maxBatchBytes,
      preHandler: ctx.requireScope("bids"),
      schema: {
        summary: "Submit many bids",
        description: `Up to ${limits.maxBatchItems} bids as {"bids": [...]}. All or nothing: when any bid is invalid the answer is 400 with one detail per invalid bid (by index) and nothing is produced.`,
        body: Type.Object({
          bids: Type.Array(inline(BidSubmissionSchema), { maxItems: limits.maxBatchItems }),
        }),
        response: responses(Type.Object({ accepted: Type.Integer(), bids: Type.Array(BidAcceptedResponse) })),
      },
    },
    async (req, reply) => {
      const receivedAt = ctx.now();
      let parsed: unknown;
      try {
        parsed = JSON.parse((req.body as Buffer).toString("utf8"));
      } catch (err) {
        return fail(reply, 400, "bad_request", `body: not valid JSON (${(err as Error).message})`);
      }
      const items = Array.isArray(parsed) ? parsed : (parsed as { bids?: unknown } | null)?.bids;
      if (!Array.isArray(items))
        return fail(reply, 400, "bad_request", 'body: must be {"bids": [...]} or an array of bids');
      if (items.length === 0) return fail(reply, 400, "bad_request", "bids: must hold at least one bid");
      if (items.length > limits.maxBatchItems)
        return fail(
          reply,
          413,
          "payload_too_large",
          `bids: ${items.length} bids, at most ${limits.maxBatchItems} per request`,
        );
      const details: { index: number; message: string }[] = [];
      const bids: BidEvent[] = [];
      const seen = new Map<string, number>();
      items.forEach((item, index) => {
        // Each item is already parsed: the decoder checks it without parsing again.
        const d = decodeBidSubmission(item, { ...decodeOptions, nowMs: receivedAt });
        if (!d.ok) {
          details.push({ index, message: d.detail });
          return;
        }
        if (d.value.bid_id !== undefined) {
          const first = seen.get(d.value.bid_id);
          if (first !== undefined) {
            details.push({
              index,
              message: `bid_id: ${quoteId(d.value.bid_id)} already used by bid ${first} of this batch`,
            });
            return;
          }
          seen.set(d.value.bid_id, index);
        }
        bids.push(bidFromSubmission(d.value, receivedAt, randomUUID));
      });
      if (details.length > 0) {
        return fail(
          reply,
          400,
          "bad_request",
          `${details.length} of ${items.length} bids are invalid; nothing was accepted`,
          details.slice(0, 100),
        );
      }
      return ctx.publish(reply, bids.map(bidRecord), () => ({
        accepted: bids.length,
        bids: bids.map(accepted),
      }));
    },
  );
}

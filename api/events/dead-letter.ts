/**
 * The dead-letter record of the contract (`gavel.bid-rejected/v1`): how a bid
 * the pipeline cannot accept is written to `<pipeline>.bids.rejected`, with
 * its reason code, so nothing is dropped silently (docs/events.md).
 */
import { createHash } from "node:crypto";
import { isObject, parseTime } from "./decode.ts";
import { type BidEvent, type BidRejected, type RejectReason, SCHEMA } from "./types.ts";

const RAW_LIMIT = 64 * 1024;

/** sha256 of the raw record, first 32 hex chars: the same record always gets the same rejection id. */
export function rejectionId(raw: Buffer | string): string {
  return createHash("sha256").update(raw).digest("hex").slice(0, 32);
}

function str(v: unknown): string | null {
  return typeof v === "string" && v.length > 0 && v.length <= 256 ? v : null;
}

/**
 * Builds the dead-letter record for a bid. For malformed records the
 * identifying fields are salvaged best-effort from whatever parsed, and the
 * raw text is kept so nothing is lost.
 */
export function bidRejection(
  raw: Buffer | string,
  reason: RejectReason,
  detail: string,
  bid?: BidEvent,
  fraudScore?: number,
  fraudFeatures?: number[],
): BidRejected {
  if (bid) {
    // The decoded bid's own fields, as the contract's BidRejected repeats them.
    const { bid_id, auction_id, bidder_id, amount, currency, placed_at, received_at } = bid;
    return {
      schema: SCHEMA.bidRejected,
      rejection_id: rejectionId(raw),
      reason,
      detail,
      bid_id,
      auction_id,
      bidder_id,
      amount,
      currency,
      placed_at,
      received_at,
      ...(fraudScore === undefined ? {} : { fraud_score: fraudScore }),
      ...(fraudFeatures === undefined ? {} : { fraud_features: fraudFeatures }),
    };
  }
  const text = typeof raw === "string" ? raw : raw.toString("utf8");
  let v: Record<string, unknown> = {};
  try {
    const p: unknown = JSON.parse(text);
    if (isObject(p)) v = p;
  } catch {
    // not JSON: nothing to salvage, the raw text carries it
  }
  const placed = str(v.placed_at);
  const received = str(v.received_at);
  return {
    schema: SCHEMA.bidRejected,
    rejection_id: rejectionId(raw),
    reason,
    detail,
    bid_id: str(v.bid_id),
    auction_id: str(v.auction_id),
    bidder_id: str(v.bidder_id),
    amount: typeof v.amount === "number" && Number.isFinite(v.amount) ? v.amount : null,
    currency: typeof v.currency === "string" ? v.currency.slice(0, 16) : null,
    placed_at: placed && !Number.isNaN(parseTime(placed)) ? placed : null,
    received_at: received && !Number.isNaN(parseTime(received)) ? received : null,
    raw: text.length > RAW_LIMIT ? text.slice(0, RAW_LIMIT) : text,
  };
}

/**
 * The records of the processor tests that need one plain auction and a few
 * bids rather than a generated dataset: a lamp sold in EUR by `seller` from
 * a start price of 100 in steps of 1, bid on by `u-1`. Each test overrides
 * the fields it is about.
 */
import { type AuctionEvent, type BidEvent, SCHEMA } from "../api/events/types.ts";

const iso = (ms: number) => new Date(ms).toISOString();

/** The lamp auction `id`, open from `startsMs` to `endsMs` (epoch ms). */
export function lampAuction(
  id: string,
  startsMs: number,
  endsMs: number,
  over: Partial<AuctionEvent> = {},
): AuctionEvent {
  return {
    schema: SCHEMA.auction,
    auction_id: id,
    item_id: `i-${id}`,
    seller_id: "seller",
    title: "Lamp",
    category: "home",
    currency: "EUR",
    start_price: 100,
    min_increment: 1,
    starts_at: iso(startsMs),
    ends_at: iso(endsMs),
    ...over,
  };
}

/**
 * A bid of `u-1` in EUR, placed 10 ms before it is received, now: `b` names
 * the bid, its auction and amount, and may override any other field.
 */
export function lampBid(b: Pick<BidEvent, "bid_id" | "auction_id" | "amount"> & Partial<BidEvent>): BidEvent {
  const now = Date.now();
  const { bid_id, auction_id, amount } = b;
  const base = { schema: SCHEMA.bid, bid_id, auction_id, bidder_id: "u-1", amount, currency: "EUR" };
  return { ...base, placed_at: iso(now - 10), received_at: iso(now), source: "api", ...b };
}

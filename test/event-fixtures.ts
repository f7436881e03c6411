/**
 * Valid example records of the contract's events for the unit tests of
 * `api/events/` (each test overrides the fields it is about).
 */
import { expect } from "vitest";
import { SCHEMA } from "../api/events/types.ts";

export const NOW = Date.parse("2026-11-22T10:00:00Z");
export const NOW_ISO = "2026-11-22T10:00:00.000Z";

/** A record builder: the example with `over` on top (`undefined` values stay, to test missing fields). */
const example =
  (base: Record<string, unknown>) =>
  (over: Record<string, unknown> = {}): Record<string, unknown> => ({ ...base, ...over });

export const bid = example({
  schema: SCHEMA.bid,
  bid_id: "b-1",
  auction_id: "a-1",
  bidder_id: "u-2",
  amount: 1500,
  currency: "USD",
  placed_at: "2026-11-22T09:59:59.500Z",
  received_at: "2026-11-22T10:00:00.000Z",
  source: "api",
});

export const auction = example({
  schema: SCHEMA.auction,
  auction_id: "a-1",
  item_id: "i-1",
  seller_id: "u-1",
  title: "Camera",
  category: "electronics",
  currency: "USD",
  start_price: 1000,
  min_increment: 100,
  starts_at: "2026-11-22T09:00:00Z",
  ends_at: "2026-11-22T11:00:00Z",
});

/** The detail of a refusal (the test fails when the decoder accepted). */
export function detailOf(r: { ok: boolean; detail?: string }): string {
  expect(r.ok).toBe(false);
  return (r as { detail: string }).detail;
}

/**
 * The event contract of a Gavel pipeline: one TypeBox definition per event
 * gives the TypeScript type, the JSON Schema checked in under
 * `api/events/schemas/` (`schemas/generate.ts`) and the runtime check of the
 * decoders (`decode.ts`). See docs/events.md.
 *
 * Compatibility rules (consumers): every event carries `schema`
 * ("gavel.<kind>/v<N>"); a decoder accepts the current and the previous
 * version (upgrading the previous one in memory) and ignores unknown
 * additional fields, so producers can add fields without a coordinated
 * deploy.
 */
import { type Static, type TProperties, type TSchema, Type } from "@sinclair/typebox";
import { Id } from "./ids.ts";

// ---------------------------------------------------------------------------
// Schema identifiers

export const SCHEMA = {
  auction: "gavel.auction/v1",
  user: "gavel.user/v1",
  /** Current bid version. v2 made `source` and `received_at` required. */
  bid: "gavel.bid/v2",
  bidV1: "gavel.bid/v1",
  bidAccepted: "gavel.bid-accepted/v1",
  bidRejected: "gavel.bid-rejected/v1",
  priceUpdate: "gavel.price-update/v1",
  fraudAlert: "gavel.fraud-alert/v1",
  transaction: "gavel.transaction/v1",
} as const;

// ---------------------------------------------------------------------------
// Building blocks

/** RFC 3339 date-time with `Z` or a numeric offset; decoders normalise to UTC `...Z`. */
export const RFC3339 = "^\\d{4}-\\d{2}-\\d{2}[Tt]\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,9})?([Zz]|[+-]\\d{2}:\\d{2})$";

export const Timestamp = (description: string) =>
  Type.String({ pattern: RFC3339, maxLength: 40, description: `${description} (RFC 3339, UTC)` });

export const Currency = Type.String({
  pattern: "^[A-Z]{3}$",
  description: "ISO 4217 alphabetic currency code, upper case (e.g. USD)",
});

/** A positive amount in integer minor units (cents); fractional minor units do not exist. */
export const Amount = (description: string) =>
  Type.Integer({
    minimum: 1,
    maximum: Number.MAX_SAFE_INTEGER,
    description: `${description} (integer minor units, > 0)`,
  });

const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

/**
 * An event: an object whose `schema` field is its schema id, with the `$id`,
 * title and description its JSON Schema file carries (`PUBLISHED_SCHEMAS`).
 * Unknown additional fields stay allowed (forward compatibility).
 */
function event<I extends string, P extends TProperties>(
  id: I,
  title: string,
  description: string,
  properties: P,
) {
  return Type.Object({ schema: Type.Literal(id), ...properties }, { $id: id, title, description });
}

const FraudFeatures = Type.Optional(
  Type.Array(Type.Number(), {
    description:
      "The fraud model's features of the bid as the stream computed them (processors/fraud/model.ts FEATURES, in order), logged for training; present when the bid was scored",
  }),
);

export const BidSource = Type.Union(
  [Type.Literal("api"), Type.Literal("pos"), Type.Literal("iot"), Type.Literal("batch")],
  { description: "Channel the bid came from" },
);
export type BidSource = Static<typeof BidSource>;

/** Reason codes, in the order the rules are checked: the first failing rule is the reason. */
export const REJECT_REASONS = [
  "malformed",
  "duplicate",
  "auction_not_found",
  "currency_mismatch",
  "self_bid",
  "not_started",
  "auction_closed",
  "below_minimum",
  "fraud_quarantine",
] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];
export const RejectReasonSchema = Type.Union(
  REJECT_REASONS.map((r) => Type.Literal(r)),
  { description: "Why the bid was not accepted (first failing rule)" },
);

export const FRAUD_SIGNALS = [
  "velocity",
  "newAccountHighBid",
  "shillPattern",
  "amountOutlier",
  "lastSecondBurst",
  "anomaly",
] as const;
export type FraudSignalName = (typeof FRAUD_SIGNALS)[number];

// ---------------------------------------------------------------------------
// Source events

export const AuctionEventSchema = event(
  SCHEMA.auction,
  "Auction",
  "An item put up for sale (topic <pipeline>.auctions, key auction_id)",
  {
    auction_id: Id("Auction identifier; the Kafka key"),
    item_id: Id("Item put up for sale"),
    seller_id: Id("User id of the seller"),
    title: Type.String({ minLength: 1, maxLength: 500, description: "Listing title" }),
    category: Type.String({ minLength: 1, maxLength: 100, description: "Category name, e.g. electronics" }),
    currency: Currency,
    start_price: Amount("Lowest acceptable first bid"),
    reserve_price: Type.Optional(
      Nullable(Amount("Hidden minimum for a sale; the auction closes without a winner below it")),
    ),
    min_increment: Amount("Every later bid must be at least current_price + min_increment"),
    starts_at: Timestamp("Bids placed before this instant are rejected not_started"),
    ends_at: Timestamp("Scheduled end, before anti-sniping extensions"),
    soft_close_seconds: Type.Optional(
      Nullable(
        Type.Integer({
          minimum: 0,
          maximum: 86_400,
          description: "Anti-sniping window: a bid accepted within it of the end extends the end by it",
        }),
      ),
    ),
  },
);
export type AuctionEvent = Static<typeof AuctionEventSchema>;

export const UserEventSchema = event(
  SCHEMA.user,
  "User",
  "A buyer or seller (topic <pipeline>.users, key user_id)",
  {
    user_id: Id("User identifier; the Kafka key"),
    created_at: Timestamp("Account creation"),
    country: Type.String({ pattern: "^[A-Z]{2}$", description: "ISO 3166-1 alpha-2 country code" }),
    rating: Type.Number({ minimum: 0, maximum: 5, description: "Feedback rating 0..5" }),
  },
);
export type UserEvent = Static<typeof UserEventSchema>;

const bidFields = {
  bid_id: Id("Unique bid identifier, client-supplied or assigned at ingest"),
  auction_id: Id("Auction bid on; the Kafka key"),
  bidder_id: Id("User id of the bidder"),
  amount: Amount("Bid amount"),
  currency: Currency,
  placed_at: Timestamp("When the bidder placed the bid (event time)"),
};

export const BidEventSchema = event(
  SCHEMA.bid,
  "Bid",
  "A bid as produced by ingest (topic <pipeline>.bids, key auction_id)",
  {
    ...bidFields,
    received_at: Timestamp("When ingest received the bid (processing time)"),
    source: BidSource,
  },
);
export type BidEvent = Static<typeof BidEventSchema>;

/** The previous bid version: no `source` (read as "api"), `received_at` optional. */
export const BidEventV1Schema = event(
  SCHEMA.bidV1,
  "Bid (v1, previous)",
  "Previous bid version, still accepted by consumers",
  {
    ...bidFields,
    received_at: Type.Optional(Timestamp("When ingest received the bid")),
  },
);
export type BidEventV1 = Static<typeof BidEventV1Schema>;

/**
 * What a client sends to ingest (`POST /v1/bids`): a bid without the fields
 * ingest owns. `bid_id` is assigned when absent; `source` defaults to "api".
 */
export const BidSubmissionSchema = Type.Object(
  {
    bid_id: Type.Optional(bidFields.bid_id),
    auction_id: bidFields.auction_id,
    bidder_id: bidFields.bidder_id,
    amount: bidFields.amount,
    currency: Currency,
    placed_at: bidFields.placed_at,
    source: Type.Optional(BidSource),
  },
  { $id: "gavel.bid-submission/v1", title: "Bid submission", description: "Body of POST /v1/bids" },
);
export type BidSubmission = Static<typeof BidSubmissionSchema>;

// ---------------------------------------------------------------------------
// Derived events

export const BidAcceptedSchema = event(
  SCHEMA.bidAccepted,
  "Bid accepted",
  "A bid that passed every rule; it leads the auction (topic <pipeline>.bids.accepted)",
  {
    ...bidFields,
    received_at: Timestamp("When ingest received the bid"),
    source: BidSource,
    fraud_score: Type.Number({ minimum: 0, maximum: 1, description: "Fraud score of the bid, 0..1" }),
    fraud_features: FraudFeatures,
    bid_seq: Type.Integer({
      minimum: 1,
      description: "1 for the auction's first accepted bid, then 2, 3...",
    }),
    ends_at: Timestamp("Effective end after this bid (anti-sniping included)"),
    extended: Type.Boolean({ description: "True when this bid extended the end (anti-sniping)" }),
  },
);
export type BidAccepted = Static<typeof BidAcceptedSchema>;

export const BidRejectedSchema = event(
  SCHEMA.bidRejected,
  "Bid rejected",
  "Dead-letter record: every bid the pipeline cannot accept, with its reason (topic <pipeline>.bids.rejected)",
  {
    rejection_id: Type.String({
      description:
        "Stable id of this rejection: sha256 of the raw record bytes (first 32 hex), so a re-delivered record maps to the same id",
    }),
    reason: RejectReasonSchema,
    detail: Type.String({ description: "Human-readable explanation (field path and what was expected)" }),
    bid_id: Nullable(Type.String({ description: "bid_id of the record when it had a usable one" })),
    auction_id: Nullable(Type.String()),
    bidder_id: Nullable(Type.String()),
    amount: Nullable(Type.Number()),
    currency: Nullable(Type.String()),
    placed_at: Nullable(Type.String()),
    received_at: Nullable(Type.String()),
    fraud_score: Type.Optional(Nullable(Type.Number({ minimum: 0, maximum: 1 }))),
    fraud_features: FraudFeatures,
    raw: Type.Optional(
      Type.String({
        description: "The original record (as text) when it was malformed; truncated to 64 KiB",
      }),
    ),
  },
);
export type BidRejected = Static<typeof BidRejectedSchema>;

export const AuctionStatusSchema = Type.Union([Type.Literal("open"), Type.Literal("closed")]);
export type AuctionStatus = Static<typeof AuctionStatusSchema>;

/** Everything needed to rebuild one auction's state after a restart or rebalance. */
export const AuctionStateSchema = Type.Object(
  {
    auction: AuctionEventSchema,
    status: AuctionStatusSchema,
    version: Type.Integer({ minimum: 1 }),
    current_price: Nullable(Type.Integer()),
    leader_id: Nullable(Type.String()),
    leader_bid_id: Nullable(Type.String()),
    bid_count: Type.Integer({ minimum: 0 }),
    extension_ms: Type.Integer({ minimum: 0, description: "Total anti-sniping extension added to ends_at" }),
    first_bid_at: Nullable(Type.String()),
    seen_bid_ids: Type.Array(Type.String(), {
      description: "Most recent decided bid ids (bounded), for duplicates",
    }),
    known_at_ms: Type.Optional(
      Type.Integer({
        description:
          "Log time (Kafka timestamp, epoch ms) of the auction record that created the auction; bids logged more than the hold time before it find no auction",
      }),
    ),
    closed_at_ms: Type.Optional(
      Type.Integer({
        description:
          "Partition clock (epoch ms) when the auction closed; its full state is kept for closedRetentionMs after it",
      }),
    ),
  },
  { title: "Auction state snapshot" },
);
export type AuctionState = Static<typeof AuctionStateSchema>;

export const PriceUpdateSchema = event(
  SCHEMA.priceUpdate,
  "Price update",
  "The auction's current state after a change (topic <pipeline>.prices, compacted, key auction_id)",
  {
    auction_id: Id("Auction; the Kafka key (topic is compacted: the last record is the state)"),
    version: Type.Integer({
      minimum: 1,
      description:
        "Increases by one with every state change of the auction; writers keep the highest (fencing)",
    }),
    status: AuctionStatusSchema,
    current_price: Nullable(
      Type.Integer({ minimum: 1, description: "Leading amount in minor units; null before the first bid" }),
    ),
    leader_id: Nullable(Type.String({ description: "Leading bidder; null before the first bid" })),
    bid_count: Type.Integer({ minimum: 0, description: "Accepted bids so far" }),
    currency: Currency,
    ends_at: Timestamp("Effective end (anti-sniping included)"),
    updated_at: Timestamp("Event time of the change (bid placed_at, auction starts_at, or close time)"),
    state: Type.Optional(AuctionStateSchema),
  },
);
export type PriceUpdate = Static<typeof PriceUpdateSchema>;

export const FraudSignalSchema = Type.Object({
  name: Type.Union(FRAUD_SIGNALS.map((s) => Type.Literal(s))),
  strength: Type.Number({ minimum: 0, maximum: 1, description: "How strongly the signal fired, 0..1" }),
  weight: Type.Number({ minimum: 0, description: "Weight from spec.fraud.weights" }),
  contribution: Type.Number({
    minimum: 0,
    description: "weight * strength: this signal's share of the score",
  }),
  detail: Type.String({ description: "Why, in numbers" }),
});
export type FraudSignal = Static<typeof FraudSignalSchema>;

export const FraudAlertSchema = event(
  SCHEMA.fraudAlert,
  "Fraud alert",
  "A bid whose score reached the alert threshold (topic <pipeline>.fraud-alerts)",
  {
    bid_id: Id("The scored bid"),
    auction_id: Id("Auction; the Kafka key"),
    bidder_id: Id("Bidder"),
    score: Type.Number({ minimum: 0, maximum: 1, description: "min(1, sum of contributions)" }),
    quarantined: Type.Boolean({
      description: "True when score >= spec.fraud.quarantineThreshold (bid rejected)",
    }),
    signals: Type.Array(FraudSignalSchema, { description: "Signals with a contribution > 0, largest first" }),
    created_at: Timestamp("Event time of the alert (the bid's placed_at)"),
  },
);
export type FraudAlert = Static<typeof FraudAlertSchema>;

export const TransactionSchema = event(
  SCHEMA.transaction,
  "Auction closed (transaction)",
  "Emitted exactly once when the effective end passes (topic <pipeline>.transactions)",
  {
    auction_id: Id("Auction; the Kafka key. Exactly one transaction per auction"),
    winner_id: Nullable(
      Type.String({ description: "Highest bidder when the reserve was met; null otherwise" }),
    ),
    high_bidder_id: Nullable(
      Type.String({ description: "Highest bidder, reserve met or not; null without bids" }),
    ),
    final_price: Nullable(
      Type.Integer({ minimum: 1, description: "Highest accepted amount; null without bids" }),
    ),
    reserve_met: Type.Boolean({
      description: "True when there is a bid and it reaches the reserve (or no reserve)",
    }),
    closed_at: Timestamp("Effective end of the auction (event time; not the wall clock of closing)"),
    seller_id: Type.String(),
    category: Type.String(),
    currency: Currency,
    start_price: Type.Integer({ minimum: 1 }),
    bid_count: Type.Integer({ minimum: 0 }),
    starts_at: Timestamp("Auction start"),
    first_bid_at: Nullable(Timestamp("placed_at of the first accepted bid")),
  },
);
export type Transaction = Static<typeof TransactionSchema>;

/** Every published schema (for `api/events/schemas/` generation). */
export const PUBLISHED_SCHEMAS: ReadonlyArray<{ id: string; file: string; schema: TSchema }> = [
  { id: SCHEMA.auction, file: "auction.v1.json", schema: AuctionEventSchema },
  { id: SCHEMA.user, file: "user.v1.json", schema: UserEventSchema },
  { id: SCHEMA.bidV1, file: "bid.v1.json", schema: BidEventV1Schema },
  { id: SCHEMA.bid, file: "bid.v2.json", schema: BidEventSchema },
  { id: "gavel.bid-submission/v1", file: "bid-submission.v1.json", schema: BidSubmissionSchema },
  { id: SCHEMA.bidAccepted, file: "bid-accepted.v1.json", schema: BidAcceptedSchema },
  { id: SCHEMA.bidRejected, file: "bid-rejected.v1.json", schema: BidRejectedSchema },
  { id: SCHEMA.priceUpdate, file: "price-update.v1.json", schema: PriceUpdateSchema },
  { id: SCHEMA.fraudAlert, file: "fraud-alert.v1.json", schema: FraudAlertSchema },
  { id: SCHEMA.transaction, file: "transaction.v1.json", schema: TransactionSchema },
];

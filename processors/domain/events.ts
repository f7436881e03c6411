/**
 * The event contract of a Gavel pipeline: one TypeBox definition per event
 * gives the TypeScript type, the JSON Schema checked in under
 * `api/events/schemas/` and the runtime validator. See docs/events.md.
 *
 * Compatibility rules (consumers): every event carries `schema`
 * ("gavel.<kind>/v<N>"); a decoder accepts the current and the previous
 * version (upgrading the previous one in memory) and ignores unknown
 * additional fields, so producers can add fields without a coordinated
 * deploy.
 */
import { createHash } from "node:crypto";
import { Kind, type Static, type TSchema, Type, TypeRegistry } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { type ValueError, ValueErrorType } from "@sinclair/typebox/errors";
import { isIsoCurrency } from "./money.ts";

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
const RFC3339 = "^\\d{4}-\\d{2}-\\d{2}[Tt]\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,9})?([Zz]|[+-]\\d{2}:\\d{2})$";

// ---------------------------------------------------------------------------
// Identifiers (auction_id, bid_id, bidder_id, seller_id, item_id, user_id):
// opaque text, as real marketplaces name their users (`d*elmer`, `Jürgen`,
// `名前`). The rule, also in docs/events.md#identifiers:
//
// - 1 to ID_MAX_CHARS (128) characters, counted in Unicode code points (not
//   UTF-16 units, not bytes: at most 512 bytes in UTF-8);
// - none of them a control character (category Cc: C0 U+0000-U+001F, DEL
//   U+007F, C1 U+0080-U+009F), a lone surrogate, the line or paragraph
//   separator U+2028/U+2029, or a bidirectional embedding, override or
//   isolate (U+202A-U+202E, U+2066-U+2069: they reorder how the text around
//   them is displayed in logs and dashboards, "Trojan Source");
// - the first and the last not white space (Unicode White_Space plus U+FEFF,
//   the byte-order mark: exactly JavaScript's \s). Spaces inside are fine.
//
// Other format characters (category Cf: ZWJ/ZWNJ in emoji and Indic or
// Persian names, soft hyphen, tag characters of flag emoji, U+200B) are
// allowed, and so are unassigned and private-use code points (the rule must
// not depend on the Unicode version of a validator). Ids are compared as
// they are: no trimming, no case folding, no Unicode normalisation (NFC
// "Jürgen" and NFD "Jürgen" are two ids). Those refusals also make ids safe
// to join with U+0000 (composite keys), to put in CSV and log lines, and
// they keep PostgreSQL text (which cannot hold NUL) able to store every id.

/** Longest id, in Unicode code points. */
export const ID_MAX_CHARS = 128;

/** Refused anywhere in an id (regex class body; surrogates are handled apart). */
const ID_FORBIDDEN = "\\u0000-\\u001F\\u007F-\\u009F\\u2028\\u2029\\u202A-\\u202E\\u2066-\\u2069";
/** Refused as the first or the last character too: Unicode White_Space (beyond Cc) and U+FEFF (JavaScript's \s). */
const ID_SPACE = " \\u00A0\\u1680\\u2000-\\u200A\\u202F\\u205F\\u3000\\uFEFF";
const ID_PAIR = "[\\uD800-\\uDBFF][\\uDC00-\\uDFFF]";
const ID_INNER = `([^${ID_FORBIDDEN}\\uD800-\\uDFFF]|${ID_PAIR})`;
const ID_EDGE = `([^${ID_FORBIDDEN}${ID_SPACE}\\uD800-\\uDFFF]|${ID_PAIR})`;

/**
 * The rule as a JSON Schema `pattern` (ECMA-262), for the published schemas:
 * it means the same with and without the `u` flag (a surrogate pair is one
 * character either way, a lone surrogate matches nothing), so every
 * validator agrees; only the regex tokens JSON Schema recommends for
 * portability (classes, groups, alternation, `*`, `?`, anchors). Length is
 * `maxLength` (JSON Schema counts code points).
 */
export const ID_PATTERN = `^${ID_EDGE}(${ID_INNER}*${ID_EDGE})?$`;

/** The same rule for the hot path: one precompiled `u` regex (code points), plus the length check. */
const ID_RE = new RegExp(
  `^[^${ID_FORBIDDEN}${ID_SPACE}\\uD800-\\uDFFF](?:[^${ID_FORBIDDEN}\\uD800-\\uDFFF]*[^${ID_FORBIDDEN}${ID_SPACE}\\uD800-\\uDFFF])?$`,
  "u",
);

/** Whether `v` is a valid id (see the rule above). Per record on the hot path: a length test and one regex. */
export function isId(v: unknown): v is string {
  if (typeof v !== "string") return false;
  const n = v.length;
  // n UTF-16 units hold between n/2 and n code points.
  if (n === 0 || n > 2 * ID_MAX_CHARS || !ID_RE.test(v)) return false;
  return n <= ID_MAX_CHARS || codePoints(v) <= ID_MAX_CHARS;
}

/** Code points of a string (a surrogate pair is one, a lone surrogate too). */
function codePoints(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length - 1; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n--;
        i++;
      }
    }
  }
  return n;
}

const CHAR_NAMES = new Map<number, string>([
  [0x00, "NUL"],
  [0x09, "tab"],
  [0x0a, "line feed"],
  [0x0b, "vertical tab"],
  [0x0c, "form feed"],
  [0x0d, "carriage return"],
  [0x1b, "escape"],
  [0x7f, "delete"],
  [0x85, "next line"],
  [0x20, "space"],
  [0xa0, "no-break space"],
  [0xfeff, "byte-order mark"],
]);
const SPACE_RE = new RegExp(`[${ID_SPACE}]`);
/**
 * What quoteId escapes: the refused characters, invisible ones (white space
 * other than U+0020, zero-width characters U+200B-U+200F, U+2060-U+2064), and
 * `\\` and `"` (so the escapes are unambiguous).
 */
const UNSAFE_RE = new RegExp(
  `[${ID_FORBIDDEN}${ID_SPACE.slice(1)}\\u200B-\\u200F\\u2060-\\u2064\\uD800-\\uDFFF\\\\"]`,
  "gu",
);

const hex = (c: number) => `U+${c.toString(16).toUpperCase().padStart(4, "0")}`;

/**
 * `v` quoted for a message, JSON-style: refused and invisible characters
 * as \\uXXXX, so no raw control byte reaches a log line or a terminal and
 * the culprit is visible; values longer than 48 UTF-16 units are cut to 40
 * and "...".
 */
export function quoteId(v: string): string {
  let s = v.length > 48 ? v.slice(0, 40) : v;
  if (s.length < v.length && /[\uD800-\uDBFF]$/.test(s)) s = s.slice(0, -1);
  const q = s.replace(UNSAFE_RE, (c) =>
    c === "\\" || c === '"' ? `\\${c}` : `\\u${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}`,
  );
  return `"${q}${s.length < v.length ? "..." : ""}"`;
}

/**
 * Why `v` is not a valid id, as the end of a message ("got ..."), or
 * undefined when it is one. Positions count characters (code points) from 1.
 */
export function idProblem(v: unknown): string | undefined {
  if (isId(v)) return undefined;
  if (typeof v !== "string") return `got ${describe(v)}, not a string`;
  if (v === "") return "got an empty string";
  const n = codePoints(v);
  if (n > ID_MAX_CHARS)
    return `got ${n} characters (${quoteId(v)}), ${n - ID_MAX_CHARS} too many: shorten it to at most ${ID_MAX_CHARS} (Unicode code points)`;
  let pos = 0;
  for (const ch of v) {
    pos++;
    const c = ch.codePointAt(0) as number;
    const at = `at position ${pos} in ${quoteId(v)}`;
    if (c <= 0x1f || (c >= 0x7f && c <= 0x9f)) {
      const name = CHAR_NAMES.get(c);
      return `got a control character ${hex(c)}${name ? ` (${name})` : ""} ${at}; remove it`;
    }
    if (c >= 0xd800 && c <= 0xdfff)
      return `got an unpaired surrogate ${hex(c)} ${at}: not valid Unicode text; send the id as UTF-8`;
    if (c === 0x2028 || c === 0x2029)
      return `got a ${c === 0x2028 ? "line" : "paragraph"} separator ${hex(c)} ${at}; remove it`;
    if ((c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069))
      return `got a bidirectional control character ${hex(c)} ${at} (it reorders how text is displayed); remove it`;
  }
  const first = v.codePointAt(0) as number;
  const lastCh = [...v.slice(-2)].at(-1) as string;
  const last = lastCh.codePointAt(0) as number;
  const space = (c: number) => `${CHAR_NAMES.get(c) ?? "white space"} ${hex(c)}`;
  if (SPACE_RE.test(String.fromCodePoint(first)))
    return `got a leading ${space(first)} in ${quoteId(v)}; remove it`;
  if (SPACE_RE.test(lastCh)) return `got a trailing ${space(last)} in ${quoteId(v)}; remove it`;
  return `got ${quoteId(v)}`;
}

const ID_KIND = "GavelId";
// Checked by isId (code points), not TypeBox's built-in string checks (UTF-16 units).
TypeRegistry.Set(ID_KIND, (_schema, value) => isId(value));

/**
 * An id field. In the published JSON Schema: a string with minLength 1,
 * maxLength 128 (code points, as JSON Schema counts) and ID_PATTERN; at
 * runtime checked by `isId`.
 */
export const Id = (description: string) =>
  Type.Unsafe<string>({
    [Kind]: ID_KIND,
    minLength: 1,
    maxLength: ID_MAX_CHARS,
    pattern: ID_PATTERN,
    description: `${description}. Opaque text: 1-${ID_MAX_CHARS} printable characters, no leading or trailing spaces`,
    type: "string",
  });

/**
 * An id as one segment of an S3 object key, a file name or a metric label
 * value: percent-encoded UTF-8 (encodeURIComponent, plus `!'()*.~`), so the
 * result is only `A-Z a-z 0-9 - _ %`: no `/`, no `.`/`..` segment, nothing a
 * shell, a URL or S3 treats specially; `decodeURIComponent` gives the id
 * back. Never build a key, a path or a label from a raw id.
 */
export function idKeySegment(id: string): string {
  return encodeURIComponent(id).replace(
    /[!'()*.~]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0")}`,
  );
}

/** The message for an invalid id field (what is wrong and how to fix it). */
export function idMessage(field: string, v: unknown): string {
  return `${field}: must be 1-${ID_MAX_CHARS} printable characters without leading or trailing spaces; ${idProblem(v) ?? "got a valid id"}`;
}

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

const _NonNegAmount = (description: string) =>
  Type.Integer({
    minimum: 0,
    maximum: Number.MAX_SAFE_INTEGER,
    description: `${description} (integer minor units)`,
  });

const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

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

export const AuctionEventSchema = Type.Object(
  {
    schema: Type.Literal(SCHEMA.auction),
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
  {
    $id: SCHEMA.auction,
    title: "Auction",
    description: "An item put up for sale (topic <pipeline>.auctions, key auction_id)",
  },
);
export type AuctionEvent = Static<typeof AuctionEventSchema>;

export const UserEventSchema = Type.Object(
  {
    schema: Type.Literal(SCHEMA.user),
    user_id: Id("User identifier; the Kafka key"),
    created_at: Timestamp("Account creation"),
    country: Type.String({ pattern: "^[A-Z]{2}$", description: "ISO 3166-1 alpha-2 country code" }),
    rating: Type.Number({ minimum: 0, maximum: 5, description: "Feedback rating 0..5" }),
  },
  { $id: SCHEMA.user, title: "User", description: "A buyer or seller (topic <pipeline>.users, key user_id)" },
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

export const BidEventSchema = Type.Object(
  {
    schema: Type.Literal(SCHEMA.bid),
    ...bidFields,
    received_at: Timestamp("When ingest received the bid (processing time)"),
    source: BidSource,
  },
  {
    $id: SCHEMA.bid,
    title: "Bid",
    description: "A bid as produced by ingest (topic <pipeline>.bids, key auction_id)",
  },
);
export type BidEvent = Static<typeof BidEventSchema>;

/** The previous bid version: no `source` (read as "api"), `received_at` optional. */
export const BidEventV1Schema = Type.Object(
  {
    schema: Type.Literal(SCHEMA.bidV1),
    ...bidFields,
    received_at: Type.Optional(Timestamp("When ingest received the bid")),
  },
  {
    $id: SCHEMA.bidV1,
    title: "Bid (v1, previous)",
    description: "Previous bid version, still accepted by consumers",
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

export const BidAcceptedSchema = Type.Object(
  {
    schema: Type.Literal(SCHEMA.bidAccepted),
    ...bidFields,
    received_at: Timestamp("When ingest received the bid"),
    source: BidSource,
    fraud_score: Type.Number({ minimum: 0, maximum: 1, description: "Fraud score of the bid, 0..1" }),
    fraud_features: Type.Optional(
      Type.Array(Type.Number(), {
        description:
          "The fraud model's features of the bid as the stream computed them (processors/fraud/model.ts FEATURES, in order), logged for training; present when the bid was scored",
      }),
    ),
    bid_seq: Type.Integer({
      minimum: 1,
      description: "1 for the auction's first accepted bid, then 2, 3...",
    }),
    ends_at: Timestamp("Effective end after this bid (anti-sniping included)"),
    extended: Type.Boolean({ description: "True when this bid extended the end (anti-sniping)" }),
  },
  {
    $id: SCHEMA.bidAccepted,
    title: "Bid accepted",
    description: "A bid that passed every rule; it leads the auction (topic <pipeline>.bids.accepted)",
  },
);
export type BidAccepted = Static<typeof BidAcceptedSchema>;

export const BidRejectedSchema = Type.Object(
  {
    schema: Type.Literal(SCHEMA.bidRejected),
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
    fraud_features: Type.Optional(
      Type.Array(Type.Number(), {
        description:
          "The fraud model's features of the bid as the stream computed them (processors/fraud/model.ts FEATURES, in order), logged for training; present when the bid was scored",
      }),
    ),
    raw: Type.Optional(
      Type.String({
        description: "The original record (as text) when it was malformed; truncated to 64 KiB",
      }),
    ),
  },
  {
    $id: SCHEMA.bidRejected,
    title: "Bid rejected",
    description:
      "Dead-letter record: every bid the pipeline cannot accept, with its reason (topic <pipeline>.bids.rejected)",
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

export const PriceUpdateSchema = Type.Object(
  {
    schema: Type.Literal(SCHEMA.priceUpdate),
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
  {
    $id: SCHEMA.priceUpdate,
    title: "Price update",
    description:
      "The auction's current state after a change (topic <pipeline>.prices, compacted, key auction_id)",
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

export const FraudAlertSchema = Type.Object(
  {
    schema: Type.Literal(SCHEMA.fraudAlert),
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
  {
    $id: SCHEMA.fraudAlert,
    title: "Fraud alert",
    description: "A bid whose score reached the alert threshold (topic <pipeline>.fraud-alerts)",
  },
);
export type FraudAlert = Static<typeof FraudAlertSchema>;

export const TransactionSchema = Type.Object(
  {
    schema: Type.Literal(SCHEMA.transaction),
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
  {
    $id: SCHEMA.transaction,
    title: "Auction closed (transaction)",
    description: "Emitted exactly once when the effective end passes (topic <pipeline>.transactions)",
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

// ---------------------------------------------------------------------------
// Decoding

export type Decoded<T> = { ok: true; value: T } | { ok: false; reason: "malformed"; detail: string };

export interface DecodeOptions {
  /**
   * Largest allowed distance of `placed_at` after the reference time
   * (`received_at`, else `nowMs`): protects against clients with wrong
   * clocks. Default 5 minutes.
   */
  readonly maxFutureSkewMs?: number;
  /** Reference time when the record has no `received_at` (ingest: its clock). Default Date.now(). */
  readonly nowMs?: number;
}

export const DEFAULT_MAX_FUTURE_SKEW_MS = 5 * 60_000;
const MAX_RECORD_BYTES = 1024 * 1024;

const compiled = new Map<TSchema, ReturnType<typeof TypeCompiler.Compile>>();
function checker(schema: TSchema) {
  let c = compiled.get(schema);
  if (!c) {
    c = TypeCompiler.Compile(schema);
    compiled.set(schema, c);
  }
  return c;
}

function describe(v: unknown): string {
  if (v === undefined) return "nothing";
  if (v === null) return "null";
  if (typeof v === "string") return `"${v.length > 40 ? `${v.slice(0, 40)}...` : v}"`;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (Array.isArray(v)) return "an array";
  return typeof v;
}

function fieldName(path: string): string {
  return path === "" ? "record" : path.replace(/^\//, "").replaceAll("/", ".");
}

/** One error -> "amount: must be ..., got ..." with the field path and what was expected. */
function explain(e: ValueError): string {
  const f = fieldName(e.path);
  const got = describe(e.value);
  const s = e.schema as { description?: string; pattern?: string; minimum?: number; maxLength?: number };
  if (e.type === ValueErrorType.ObjectRequiredProperty) return `${f}: is required`;
  if ((e.schema as { [Kind]?: string })[Kind] === ID_KIND) return idMessage(f, e.value);
  if (f === "amount" || f.endsWith("price") || f === "min_increment") {
    if (typeof e.value === "number" && !Number.isInteger(e.value)) {
      return `${f}: must be an integer number of minor units (cents); fractional minor units are not allowed, got ${got}`;
    }
    if (typeof e.value === "number" && e.value <= 0) return `${f}: must be greater than 0, got ${got}`;
    if (typeof e.value === "number") return `${f}: must be at most ${Number.MAX_SAFE_INTEGER}, got ${got}`;
    return `${f}: must be an integer number of minor units, got ${got}`;
  }
  if (f === "currency")
    return `currency: must be an ISO 4217 code of 3 upper-case letters (e.g. USD), got ${got}`;
  if (s.pattern === RFC3339)
    return `${f}: must be an RFC 3339 date-time like 2026-01-02T03:04:05Z, got ${got}`;
  if (f === "schema")
    return `schema: must be ${(e.schema as { const?: string }).const ?? "a known version"}, got ${got}`;
  if (f === "source") return `source: must be one of api, pos, iot, batch, got ${got}`;
  return `${f}: ${e.message.toLowerCase()}, got ${got}`;
}

function firstErrors(schema: TSchema, value: unknown, max = 3): string {
  const out: string[] = [];
  for (const e of checker(schema).Errors(value)) {
    // A union reports its branches first; the per-field errors are more useful.
    if (e.type === ValueErrorType.Union && out.length > 0) continue;
    const msg = explain(e);
    if (!out.includes(msg)) out.push(msg);
    if (out.length >= max) break;
  }
  return out.join("; ") || "does not match the schema";
}

function parseJson(
  raw: Buffer | string | unknown,
): { ok: true; value: unknown } | { ok: false; detail: string } {
  if (typeof raw !== "string" && !Buffer.isBuffer(raw)) return { ok: true, value: raw };
  const size = typeof raw === "string" ? Buffer.byteLength(raw) : raw.length;
  if (size > MAX_RECORD_BYTES)
    return { ok: false, detail: `record: is ${size} bytes, more than ${MAX_RECORD_BYTES}` };
  const text = typeof raw === "string" ? raw : raw.toString("utf8");
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    return { ok: false, detail: `record: not valid JSON (${(err as Error).message})` };
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Parses an RFC 3339 string to epoch ms, or NaN when the calendar date is impossible (2026-02-30). */
export function parseTime(s: string): number {
  const ms = Date.parse(s);
  if (Number.isNaN(ms)) return Number.NaN;
  // Date.parse rolls 2026-02-30 over to March; compare the date part back.
  const m = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2})/.exec(s);
  if (m && /[Zz]$/.test(s)) {
    const d = new Date(ms);
    if (
      d.getUTCDate() !== Number(m[3]) ||
      d.getUTCMonth() + 1 !== Number(m[2]) ||
      d.getUTCHours() !== Number(m[4])
    )
      return Number.NaN;
  } else if (m && (Number(m[2]) > 12 || Number(m[3]) > 31 || Number(m[4]) > 23)) {
    return Number.NaN;
  }
  return ms;
}

/** Canonical UTC form (millisecond precision). */
export function toIso(ms: number): string {
  return new Date(ms).toISOString();
}

const CANONICAL = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

function normaliseTimes(
  obj: Record<string, unknown>,
  fields: readonly string[],
): { ok: true } | { ok: false; detail: string } {
  for (const f of fields) {
    const v = obj[f];
    if (typeof v !== "string") continue;
    // Fast path: already canonical UTC; valid iff formatting it back gives the same text.
    if (CANONICAL.test(v)) {
      const ms = Date.parse(v);
      if (!Number.isNaN(ms) && toIso(ms) === v) continue;
    }
    const ms = parseTime(v);
    if (Number.isNaN(ms))
      return { ok: false, detail: `${f}: ${JSON.stringify(v)} is not a valid calendar date-time` };
    obj[f] = toIso(ms);
  }
  return { ok: true };
}

function checkCurrency(obj: Record<string, unknown>): string | undefined {
  const c = obj.currency;
  if (typeof c === "string" && !isIsoCurrency(c)) return `currency: "${c}" is not an ISO 4217 currency code`;
  return undefined;
}

function malformed<T>(detail: string): Decoded<T> {
  return { ok: false, reason: "malformed", detail };
}

/**
 * Decodes a bid record from the bids topic (current or previous version).
 * Checks, beyond the schema: the calendar validity of timestamps, the ISO
 * 4217 code, and that `placed_at` is not further than `maxFutureSkewMs` after
 * `received_at` (or `nowMs`). Timestamps come back normalised to UTC.
 */
export function decodeBid(raw: Buffer | string | unknown, opts: DecodeOptions = {}): Decoded<BidEvent> {
  const parsed = parseJson(raw);
  if (!parsed.ok) return malformed(parsed.detail);
  const v = parsed.value;
  if (!isObject(v)) return malformed(`record: must be a JSON object, got ${describe(v)}`);
  let obj: Record<string, unknown>;
  if (v.schema === SCHEMA.bid) {
    if (!checker(BidEventSchema).Check(v)) return malformed(firstErrors(BidEventSchema, v));
    obj = { ...v };
  } else if (v.schema === SCHEMA.bidV1) {
    if (!checker(BidEventV1Schema).Check(v)) return malformed(firstErrors(BidEventV1Schema, v));
    // Upgrade: v1 had no source (every v1 producer was the HTTP API).
    obj = { ...v, schema: SCHEMA.bid, source: "api" };
  } else {
    return malformed(
      `schema: must be "${SCHEMA.bid}" (or the previous "${SCHEMA.bidV1}"), got ${describe(v.schema)}`,
    );
  }
  const cur = checkCurrency(obj);
  if (cur) return malformed(cur);
  const t = normaliseTimes(obj, ["placed_at", "received_at"]);
  if (!t.ok) return malformed(t.detail);
  const placed = Date.parse(obj.placed_at as string);
  const refMs =
    typeof obj.received_at === "string" ? Date.parse(obj.received_at) : (opts.nowMs ?? Date.now());
  if (obj.received_at === undefined) obj.received_at = toIso(refMs);
  const skew = opts.maxFutureSkewMs ?? DEFAULT_MAX_FUTURE_SKEW_MS;
  if (placed - refMs > skew) {
    return malformed(
      `placed_at: ${obj.placed_at} is ${Math.round((placed - refMs) / 1000)}s after received_at ${toIso(refMs)}; at most ${Math.round(skew / 1000)}s of clock skew is allowed`,
    );
  }
  return { ok: true, value: obj as BidEvent };
}

/** Decodes a client bid submission (ingest body) without the fields ingest adds. */
export function decodeBidSubmission(
  raw: Buffer | string | unknown,
  opts: DecodeOptions = {},
): Decoded<BidSubmission> {
  const parsed = parseJson(raw);
  if (!parsed.ok) return malformed(parsed.detail);
  const v = parsed.value;
  if (!isObject(v)) return malformed(`record: must be a JSON object, got ${describe(v)}`);
  if (!checker(BidSubmissionSchema).Check(v)) return malformed(firstErrors(BidSubmissionSchema, v));
  const obj: Record<string, unknown> = { ...v };
  const cur = checkCurrency(obj);
  if (cur) return malformed(cur);
  const t = normaliseTimes(obj, ["placed_at"]);
  if (!t.ok) return malformed(t.detail);
  const now = opts.nowMs ?? Date.now();
  const skew = opts.maxFutureSkewMs ?? DEFAULT_MAX_FUTURE_SKEW_MS;
  const placed = Date.parse(obj.placed_at as string);
  if (placed - now > skew) {
    return malformed(
      `placed_at: ${obj.placed_at} is ${Math.round((placed - now) / 1000)}s in the future; at most ${Math.round(skew / 1000)}s of clock skew is allowed`,
    );
  }
  return { ok: true, value: obj as BidSubmission };
}

/**
 * Turns a validated submission into the bid event ingest produces.
 * `assignId` is used when the client sent no bid_id (e.g. randomUUID).
 */
export function bidFromSubmission(
  sub: BidSubmission,
  receivedAtMs: number,
  assignId: () => string,
): BidEvent {
  return {
    schema: SCHEMA.bid,
    bid_id: sub.bid_id ?? assignId(),
    auction_id: sub.auction_id,
    bidder_id: sub.bidder_id,
    amount: sub.amount,
    currency: sub.currency,
    placed_at: sub.placed_at,
    received_at: toIso(receivedAtMs),
    source: sub.source ?? "api",
  };
}

export function decodeAuction(raw: Buffer | string | unknown): Decoded<AuctionEvent> {
  const parsed = parseJson(raw);
  if (!parsed.ok) return malformed(parsed.detail);
  const v = parsed.value;
  if (!isObject(v)) return malformed(`record: must be a JSON object, got ${describe(v)}`);
  if (!checker(AuctionEventSchema).Check(v)) return malformed(firstErrors(AuctionEventSchema, v));
  const obj: Record<string, unknown> = { ...v };
  const cur = checkCurrency(obj);
  if (cur) return malformed(cur);
  const t = normaliseTimes(obj, ["starts_at", "ends_at"]);
  if (!t.ok) return malformed(t.detail);
  if (Date.parse(obj.ends_at as string) <= Date.parse(obj.starts_at as string)) {
    return malformed(`ends_at: ${obj.ends_at} must be after starts_at ${obj.starts_at}`);
  }
  const a = obj as AuctionEvent;
  if (a.reserve_price != null && a.reserve_price < a.start_price) {
    return malformed(`reserve_price: ${a.reserve_price} must be at least start_price ${a.start_price}`);
  }
  return { ok: true, value: a };
}

export function decodeUser(raw: Buffer | string | unknown): Decoded<UserEvent> {
  const parsed = parseJson(raw);
  if (!parsed.ok) return malformed(parsed.detail);
  const v = parsed.value;
  if (!isObject(v)) return malformed(`record: must be a JSON object, got ${describe(v)}`);
  if (!checker(UserEventSchema).Check(v)) return malformed(firstErrors(UserEventSchema, v));
  const obj: Record<string, unknown> = { ...v };
  const t = normaliseTimes(obj, ["created_at"]);
  if (!t.ok) return malformed(t.detail);
  return { ok: true, value: obj as UserEvent };
}

/** Generic decoder for the derived events (consumers such as silver-writer). */
export function decodeWith<T>(schema: TSchema, raw: Buffer | string | unknown): Decoded<T> {
  const parsed = parseJson(raw);
  if (!parsed.ok) return malformed(parsed.detail);
  if (!checker(schema).Check(parsed.value)) return malformed(firstErrors(schema, parsed.value));
  return { ok: true, value: parsed.value as T };
}

export const decodePriceUpdate = (raw: Buffer | string | unknown) =>
  decodeWith<PriceUpdate>(PriceUpdateSchema, raw);
export const decodeFraudAlert = (raw: Buffer | string | unknown) =>
  decodeWith<FraudAlert>(FraudAlertSchema, raw);
export const decodeTransaction = (raw: Buffer | string | unknown) =>
  decodeWith<Transaction>(TransactionSchema, raw);

// ---------------------------------------------------------------------------
// Rejections

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
    return {
      schema: SCHEMA.bidRejected,
      rejection_id: rejectionId(raw),
      reason,
      detail,
      bid_id: bid.bid_id,
      auction_id: bid.auction_id,
      bidder_id: bid.bidder_id,
      amount: bid.amount,
      currency: bid.currency,
      placed_at: bid.placed_at,
      received_at: bid.received_at,
      ...(fraudScore === undefined ? {} : { fraud_score: fraudScore }),
      ...(fraudFeatures === undefined ? {} : { fraud_features: fraudFeatures }),
    };
  }
  let v: Record<string, unknown> = {};
  try {
    const p: unknown = JSON.parse(typeof raw === "string" ? raw : raw.toString("utf8"));
    if (isObject(p)) v = p;
  } catch {
    // not JSON: nothing to salvage, the raw text carries it
  }
  const text = typeof raw === "string" ? raw : raw.toString("utf8");
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

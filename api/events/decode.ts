/**
 * The decoders of the event contract: bytes (or parsed JSON) in, a valid,
 * normalised event or a precise refusal out. Each is one compiled TypeBox
 * check of the event's schema (`types.ts`) plus the rules a JSON Schema
 * cannot say: calendar dates, ISO 4217 membership, clock skew, cross-field
 * order; timestamps come back in canonical UTC. Every process decodes a
 * record once, with these: ingest (submissions, auctions, users), the
 * bid-processor (bids, auctions, users, its own price updates and
 * transactions on a rebuild) and the silver-writer (`eventCheck`).
 */
import { Kind, type TObject, type TSchema } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { type ValueError, ValueErrorType } from "@sinclair/typebox/errors";
import { isIsoCurrency } from "./currency.ts";
import { describeValue, ID_KIND, idMessage } from "./ids.ts";
import {
  type AuctionEvent,
  AuctionEventSchema,
  type BidEvent,
  BidEventSchema,
  BidEventV1Schema,
  type BidSubmission,
  BidSubmissionSchema,
  type PriceUpdate,
  PriceUpdateSchema,
  RFC3339,
  SCHEMA,
  type Transaction,
  TransactionSchema,
  type UserEvent,
  UserEventSchema,
} from "./types.ts";

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

function fieldName(path: string): string {
  return path === "" ? "record" : path.replace(/^\//, "").replaceAll("/", ".");
}

/** One error -> "amount: must be ..., got ..." with the field path and what was expected. */
function explain(e: ValueError): string {
  const f = fieldName(e.path);
  const got = describeValue(e.value);
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

/** A JSON object (not null, not an array). */
export function isObject(v: unknown): v is Record<string, unknown> {
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

/** "00".."99" and "000".."999": the fields of a time of day. */
const TWO = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, "0"));
const THREE = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, "0"));
const DAY_MS = 86_400_000;
/** Last instant of 9999-12-31: beyond it toISOString writes six-digit years. */
const MAX_FOUR_DIGIT_YEAR_MS = 253_402_300_799_999;
/** The day `isoDay` formats (epoch days) and its `YYYY-MM-DDT`. */
let isoDayNumber = Number.NaN;
let isoDay = "";

/**
 * Canonical UTC form (millisecond precision), exactly what
 * `new Date(ms).toISOString()` gives (a unit test compares them), several
 * times faster: the date part is formatted once per day, the time of day
 * from tables. The processors format a few instants per bid (a profile of
 * the bid-processor had `toISOString` at 2.7 % of its CPU).
 */
export function toIso(ms: number): string {
  if (!(ms >= 0 && ms <= MAX_FOUR_DIGIT_YEAR_MS)) return new Date(ms).toISOString(); // NaN throws there
  const t = Math.trunc(ms); // a Date's time value drops fractions
  const day = Math.floor(t / DAY_MS);
  if (day !== isoDayNumber) {
    isoDay = new Date(day * DAY_MS).toISOString().slice(0, 11);
    isoDayNumber = day;
  }
  let r = t - day * DAY_MS;
  const milli = r % 1000;
  r = (r - milli) / 1000;
  const sec = r % 60;
  r = (r - sec) / 60;
  const min = r % 60;
  return `${isoDay}${TWO[(r - min) / 60]}:${TWO[min]}:${TWO[sec]}.${THREE[milli]}Z`;
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

type Checked =
  | { ok: true; value: Record<string, unknown> }
  | { ok: false; reason: "malformed"; detail: string };

/** JSON (within the size limit) and an object: what every decoder reads first. */
function parseObject(raw: Buffer | string | unknown): Checked {
  const parsed = parseJson(raw);
  if (!parsed.ok) return malformed(parsed.detail);
  const v = parsed.value;
  if (!isObject(v)) return malformed(`record: must be a JSON object, got ${describeValue(v)}`);
  return { ok: true, value: v };
}

/**
 * The schema's compiled check, then what a JSON Schema cannot say: ISO 4217
 * membership and calendar-valid `times`, normalised to UTC on a copy (the
 * caller's object is left as it came).
 */
function validate(v: Record<string, unknown>, schema: TObject, times: readonly string[]): Checked {
  if (!checker(schema).Check(v)) return malformed(firstErrors(schema, v));
  const obj: Record<string, unknown> = { ...v };
  // Only where the schema has a currency: an unknown additional field is not checked.
  const cur = "currency" in schema.properties ? checkCurrency(obj) : undefined;
  if (cur) return malformed(cur);
  const t = normaliseTimes(obj, times);
  if (!t.ok) return malformed(t.detail);
  return { ok: true, value: obj };
}

/**
 * Refuses a `placed_at` more than `maxFutureSkewMs` after `refMs` (a client
 * with a wrong clock); `ahead` says of what, for the message.
 */
function skewProblem(
  placedAt: string,
  refMs: number,
  opts: DecodeOptions,
  ahead: string,
): string | undefined {
  const skew = opts.maxFutureSkewMs ?? DEFAULT_MAX_FUTURE_SKEW_MS;
  const placed = Date.parse(placedAt);
  if (placed - refMs <= skew) return undefined;
  return `placed_at: ${placedAt} is ${Math.round((placed - refMs) / 1000)}s ${ahead}; at most ${Math.round(skew / 1000)}s of clock skew is allowed`;
}

/**
 * Decodes a bid record from the bids topic (current or previous version).
 * Checks, beyond the schema: the calendar validity of timestamps, the ISO
 * 4217 code, and that `placed_at` is not further than `maxFutureSkewMs` after
 * `received_at` (or `nowMs`). Timestamps come back normalised to UTC.
 */
export function decodeBid(raw: Buffer | string | unknown, opts: DecodeOptions = {}): Decoded<BidEvent> {
  const p = parseObject(raw);
  if (!p.ok) return p;
  const v = p.value;
  const times = ["placed_at", "received_at"];
  let d: Checked;
  if (v.schema === SCHEMA.bid) {
    d = validate(v, BidEventSchema, times);
  } else if (v.schema === SCHEMA.bidV1) {
    d = validate(v, BidEventV1Schema, times);
    // Upgrade: v1 had no source (every v1 producer was the HTTP API).
    if (d.ok) Object.assign(d.value, { schema: SCHEMA.bid, source: "api" });
  } else {
    return malformed(
      `schema: must be "${SCHEMA.bid}" (or the previous "${SCHEMA.bidV1}"), got ${describeValue(v.schema)}`,
    );
  }
  if (!d.ok) return d;
  const obj = d.value;
  const refMs =
    typeof obj.received_at === "string" ? Date.parse(obj.received_at) : (opts.nowMs ?? Date.now());
  if (obj.received_at === undefined) obj.received_at = toIso(refMs);
  const skew = skewProblem(obj.placed_at as string, refMs, opts, `after received_at ${toIso(refMs)}`);
  if (skew) return malformed(skew);
  return { ok: true, value: obj as BidEvent };
}

/** Decodes a client bid submission (ingest body) without the fields ingest adds. */
export function decodeBidSubmission(
  raw: Buffer | string | unknown,
  opts: DecodeOptions = {},
): Decoded<BidSubmission> {
  const p = parseObject(raw);
  if (!p.ok) return p;
  const d = validate(p.value, BidSubmissionSchema, ["placed_at"]);
  if (!d.ok) return d;
  const skew = skewProblem(d.value.placed_at as string, opts.nowMs ?? Date.now(), opts, "in the future");
  if (skew) return malformed(skew);
  return { ok: true, value: d.value as BidSubmission };
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
  const p = parseObject(raw);
  if (!p.ok) return p;
  const d = validate(p.value, AuctionEventSchema, ["starts_at", "ends_at"]);
  if (!d.ok) return d;
  const a = d.value as AuctionEvent;
  if (Date.parse(a.ends_at) <= Date.parse(a.starts_at)) {
    return malformed(`ends_at: ${a.ends_at} must be after starts_at ${a.starts_at}`);
  }
  if (a.reserve_price != null && a.reserve_price < a.start_price) {
    return malformed(`reserve_price: ${a.reserve_price} must be at least start_price ${a.start_price}`);
  }
  return { ok: true, value: a };
}

export function decodeUser(raw: Buffer | string | unknown): Decoded<UserEvent> {
  const p = parseObject(raw);
  if (!p.ok) return p;
  const d = validate(p.value, UserEventSchema, ["created_at"]);
  return d.ok ? { ok: true, value: d.value as UserEvent } : d;
}

/**
 * Decodes a derived event (the bid-processor's own outputs, read back on a
 * rebuild): the schema's check, no normalisation (the producer wrote
 * canonical values).
 */
export function decodeWith<T>(schema: TSchema, raw: Buffer | string | unknown): Decoded<T> {
  const parsed = parseJson(raw);
  if (!parsed.ok) return malformed(parsed.detail);
  if (!checker(schema).Check(parsed.value)) return malformed(firstErrors(schema, parsed.value));
  return { ok: true, value: parsed.value as T };
}

export const decodePriceUpdate = (raw: Buffer | string | unknown) =>
  decodeWith<PriceUpdate>(PriceUpdateSchema, raw);
export const decodeTransaction = (raw: Buffer | string | unknown) =>
  decodeWith<Transaction>(TransactionSchema, raw);

/**
 * The compiled check of an event's schema as a type guard, for a consumer
 * that parsed the record itself and handles a refusal its own way: the
 * silver-writer stores a conforming event as it is and reads any other
 * record tolerantly (processors/silver-writer/rows.ts). No message is built.
 */
export function eventCheck<T>(schema: TSchema): (v: unknown) => v is T {
  const c = checker(schema);
  return (v: unknown): v is T => c.Check(v);
}

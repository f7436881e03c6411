import { afterEach, describe, expect, it } from "vitest";
import { ID_PATTERN } from "../../api/events/ids.ts";
import { createLogger } from "../../lib/log.ts";
import type { Producer, TopicMessages } from "../kafka/transport.ts";
import { Registry } from "../runtime/metrics.ts";
import type { App } from "../runtime/server.ts";
import { buildIngestApp } from "./app.ts";
import { parseApiKeys } from "./auth.ts";
import { BatchingProducer } from "./batcher.ts";

/** An in-process stand-in for the broker: records what was acknowledged; `hold` delays acks. */
class RecordingProducer implements Producer {
  sent: TopicMessages[] = [];
  hold: Promise<void> | undefined;
  async send(batches: readonly TopicMessages[]): Promise<void> {
    if (this.hold) await this.hold;
    this.sent.push(...batches);
  }
  async close(): Promise<void> {}
  records() {
    return this.sent.flatMap((b) =>
      b.messages.map((m) => ({ topic: b.topic, key: m.key, value: JSON.parse(String(m.value)) })),
    );
  }
}

const NOW = Date.parse("2026-11-22T10:00:00Z");
const KEY = "test-key-all";
const auth = { authorization: `Bearer ${KEY}` };
const bid = (over: Record<string, unknown> = {}) => ({
  auction_id: "a-1",
  bidder_id: "u-1",
  amount: 1050,
  currency: "USD",
  placed_at: "2026-11-22T09:59:59Z",
  ...over,
});

let app: App | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function make(opts: { maxInFlight?: number; maxRecordBytes?: number } = {}) {
  const producer = new RecordingProducer();
  const built = await buildIngestApp({
    producer: new BatchingProducer(producer, { lingerMs: 0, maxInFlight: opts.maxInFlight ?? 100 }),
    topics: { bids: "p.bids", auctions: "p.auctions", users: "p.users" },
    keys: parseApiKeys(`${KEY},bids-only-key=bids`),
    logger: createLogger("test", "silent"),
    metrics: new Registry(),
    health: { live: () => true, ready: () => ({ ok: true }) },
    limits: { maxRecordBytes: opts.maxRecordBytes ?? 64 * 1024 },
    now: () => NOW,
  });
  app = built;
  return { app: built, producer };
}

/** POST with the all-scopes key (or `headers`). */
function post(app: App, url: string, payload: object | string, headers: Record<string, string> = auth) {
  return app.inject({ method: "POST", url, headers, payload });
}

/** A valid auction body (without `schema`: ingest assumes the current version). */
const auctionBody = (over: Record<string, unknown> = {}) => ({
  auction_id: "a-9",
  item_id: "i-9",
  seller_id: "s-1",
  title: "Lamp",
  category: "home",
  currency: "EUR",
  start_price: 1000,
  min_increment: 50,
  starts_at: "2026-11-22T10:00:00Z",
  ends_at: "2026-11-22T11:00:00Z",
  ...over,
});
const userBody = (over: Record<string, unknown> = {}) => ({
  user_id: "u-9",
  created_at: "2026-01-01T00:00:00Z",
  country: "DE",
  rating: 4.5,
  ...over,
});

describe("ingest API", () => {
  it("accepts a bid with 202 after the ack, assigns bid_id and received_at, keys by auction_id", async () => {
    const { app, producer } = await make();
    const r = await post(app, "/v1/bids", bid());
    expect(r.statusCode).toBe(202);
    const body = r.json();
    expect(body.bid_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(body.received_at).toBe("2026-11-22T10:00:00.000Z");
    const recs = producer.records();
    expect(recs).toHaveLength(1);
    expect(recs[0]).toMatchObject({
      topic: "p.bids",
      key: "a-1",
      value: {
        schema: "gavel.bid/v2",
        bid_id: body.bid_id,
        amount: 1050,
        source: "api",
        received_at: body.received_at,
      },
    });
  });

  it.each([
    ["malformed JSON", '{"auction_id": ', /not valid JSON/],
    [
      "wrong type",
      JSON.stringify(bid({ amount: "10.50" })),
      /amount: must be an integer number of minor units/,
    ],
    ["fractional cents", JSON.stringify(bid({ amount: 10.5 })), /fractional minor units are not allowed/],
    ["negative amount", JSON.stringify(bid({ amount: -5 })), /amount: must be greater than 0/],
    ["unknown currency", JSON.stringify(bid({ currency: "XYZ" })), /not an ISO 4217 currency/],
    ["far future", JSON.stringify(bid({ placed_at: "2030-01-01T00:00:00Z" })), /in the future/],
    ["missing field", JSON.stringify({ auction_id: "a-1" }), /is required/],
    ["not an object", "[1,2]", /must be a JSON object/],
  ])("answers 400 with a precise message for %s and produces nothing", async (_name, payload, msg) => {
    const { app, producer } = await make();
    const r = await post(app, "/v1/bids", payload, { ...auth, "content-type": "application/json" });
    expect(r.statusCode).toBe(400);
    expect(r.json().error).toBe("bad_request");
    expect(r.json().message).toMatch(msg);
    expect(producer.records()).toHaveLength(0);
  });

  it("authenticates: 401 without or with a wrong key, 403 without the scope", async () => {
    const { app, producer } = await make();
    expect((await post(app, "/v1/bids", bid(), {})).statusCode).toBe(401);
    expect((await post(app, "/v1/bids", bid(), { "x-api-key": "wrong-key-123" })).statusCode).toBe(401);
    const r = await post(app, "/v1/auctions", {}, { "x-api-key": "bids-only-key" });
    expect(r.statusCode).toBe(403);
    expect(producer.records()).toHaveLength(0);
  });

  it("rejects bodies over the limit with 413", async () => {
    const { app, producer } = await make({ maxRecordBytes: 1024 });
    const r = await post(app, "/v1/bids", bid({ pad: "x".repeat(5000) }));
    expect(r.statusCode).toBe(413);
    expect(r.json().error).toBe("payload_too_large");
    expect(producer.records()).toHaveLength(0);
  });

  it("sheds load with 503 and Retry-After when too much waits for the broker", async () => {
    const { app, producer } = await make({ maxInFlight: 2 });
    let release!: () => void;
    producer.hold = new Promise<void>((r) => {
      release = r;
    });
    const first = post(app, "/v1/bids:batch", { bids: [bid({ bid_id: "b1" }), bid({ bid_id: "b2" })] });
    await new Promise((r) => setTimeout(r, 20));
    const second = await post(app, "/v1/bids", bid());
    expect(second.statusCode).toBe(503);
    expect(second.headers["retry-after"]).toBe("1");
    release();
    expect((await first).statusCode).toBe(202);
    expect(producer.records().map((r) => r.value.bid_id)).toEqual(["b1", "b2"]);
  });

  it("batch: all or nothing with per-index details, duplicate ids in one batch refused", async () => {
    const { app, producer } = await make();
    const bad = await post(app, "/v1/bids:batch", {
      bids: [bid({ bid_id: "x1" }), bid({ amount: 0 }), bid({ bid_id: "x1" })],
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().details.map((d: { index: number }) => d.index)).toEqual([1, 2]);
    expect(producer.records()).toHaveLength(0);
    const ok = await post(app, "/v1/bids:batch", {
      bids: [bid({ bid_id: "x1" }), bid({ bid_id: "x2", source: "batch" })],
    });
    expect(ok.statusCode).toBe(202);
    expect(ok.json().accepted).toBe(2);
    expect(producer.records().map((r) => r.value.source)).toEqual(["api", "batch"]);
  });

  it("accepts auctions and users keyed by their ids, defaulting the schema field", async () => {
    const { app, producer } = await make();
    const a = await post(app, "/v1/auctions", auctionBody());
    expect(a.statusCode).toBe(202);
    const u = await post(app, "/v1/users", userBody());
    expect(u.statusCode).toBe(202);
    const bad = await post(app, "/v1/users", { user_id: "u-9" });
    expect(bad.statusCode).toBe(400);
    expect(producer.records().map((r) => [r.topic, r.key])).toEqual([
      ["p.auctions", "a-9"],
      ["p.users", "u-9"],
    ]);
  });

  it("serves the OpenAPI document", async () => {
    const { app } = await make();
    const r = await app.inject({ method: "GET", url: "/openapi.json" });
    expect(r.statusCode).toBe(200);
    const doc = r.json();
    expect(doc.openapi).toBe("3.0.3");
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(["/v1/bids", "/v1/bids:batch", "/v1/auctions", "/v1/users"]),
    );
  });
});

describe("ingest API: identifiers are opaque text", () => {
  const names = [
    "d*elmer",
    "*champaignbubbles*",
    "Jürgen",
    "名前",
    "🦊 fox",
    "Ölfass & Söhne",
    "😀".repeat(128), // 128 code points
  ];
  /** At most 128 code points. */
  const cap = (s: string) => [...s].slice(0, 128).join("");

  it("accepts bids whose ids are any printable Unicode text and keeps them exactly, keyed by the auction_id", async () => {
    const { app, producer } = await make();
    for (const [i, name] of names.entries()) {
      const sent = bid({ bid_id: cap(`${i}#${name}`), auction_id: cap(`Auktion ${name}`), bidder_id: name });
      // The body as raw UTF-8 bytes, as a client sends it.
      const r = await post(app, "/v1/bids", Buffer.from(JSON.stringify(sent), "utf8"), {
        ...auth,
        "content-type": "application/json; charset=utf-8",
      });
      expect(r.statusCode, name).toBe(202);
      expect(r.json().bid_id).toBe(cap(`${i}#${name}`));
    }
    const recs = producer.records();
    expect(recs.map((r) => r.value.bidder_id)).toEqual(names);
    expect(recs.map((r) => r.key)).toEqual(names.map((n) => cap(`Auktion ${n}`)));
    for (const r of recs) expect(r.key).toBe(r.value.auction_id);
  });

  it("accepts such ids in batches, for auctions and for users", async () => {
    const { app, producer } = await make();
    const b = await post(app, "/v1/bids:batch", {
      bids: names.map((n, i) => bid({ bid_id: cap(`${i}/${n}`), bidder_id: n })),
    });
    expect(b.statusCode).toBe(202);
    expect(b.json().accepted).toBe(names.length);
    const a = await post(
      app,
      "/v1/auctions",
      auctionBody({ auction_id: "名前の競売", item_id: "*item*", seller_id: "Jürgen" }),
    );
    expect(a.statusCode).toBe(202);
    expect(a.json()).toEqual({ auction_id: "名前の競売" });
    const u = await post(app, "/v1/users", userBody({ user_id: "d*elmer" }));
    expect(u.statusCode).toBe(202);
    expect(
      producer
        .records()
        .slice(-2)
        .map((r) => [r.topic, r.key]),
    ).toEqual([
      ["p.auctions", "名前の競売"],
      ["p.users", "d*elmer"],
    ]);
  });

  it.each([
    [
      "a tab",
      { bidder_id: "d\telmer" },
      "bidder_id",
      'got a control character U+0009 (tab) at position 2 in "d\\u0009elmer"; remove it',
    ],
    [
      "a trailing space",
      { bidder_id: "Jürgen " },
      "bidder_id",
      'got a trailing space U+0020 in "Jürgen "; remove it',
    ],
    [
      "a leading space",
      { auction_id: " a-1" },
      "auction_id",
      'got a leading space U+0020 in " a-1"; remove it',
    ],
    ["an empty id", { bid_id: "" }, "bid_id", "got an empty string"],
    ["129 characters", { bidder_id: "名".repeat(129) }, "bidder_id", "got 129 characters"],
    [
      "a lone surrogate",
      { bidder_id: "\uD83D" },
      "bidder_id",
      "got an unpaired surrogate U+D83D at position 1",
    ],
    [
      "a bidi override",
      { bidder_id: "abc\u202Egpj.exe" },
      "bidder_id",
      "got a bidirectional control character U+202E at position 4",
    ],
  ])(
    "refuses an id with %s with 400, naming the field, the problem and the fix",
    async (_n, over, field, why) => {
      const { app, producer } = await make();
      const r = await post(app, "/v1/bids", bid(over));
      expect(r.statusCode).toBe(400);
      expect(r.json().error).toBe("bad_request");
      const msg: string = r.json().message;
      expect(
        msg.startsWith(`${field}: must be 1-128 printable characters without leading or trailing spaces; `),
      ).toBe(true);
      expect(msg).toContain(why);
      expect(producer.records()).toHaveLength(0);
    },
  );

  it("batch: a malformed id is reported by index, nothing is produced", async () => {
    const { app, producer } = await make();
    const r = await post(app, "/v1/bids:batch", {
      bids: [bid({ bidder_id: "d*elmer" }), bid({ bidder_id: "d*elmer\n" })],
    });
    expect(r.statusCode).toBe(400);
    expect(r.json().details).toEqual([
      {
        index: 1,
        message:
          'bidder_id: must be 1-128 printable characters without leading or trailing spaces; got a control character U+000A (line feed) at position 8 in "d*elmer\\u000A"; remove it',
      },
    ]);
    expect(producer.records()).toHaveLength(0);
  });

  it("documents the rule in the OpenAPI document", async () => {
    const { app } = await make();
    const doc = (await app.inject({ method: "GET", url: "/openapi.json" })).json();
    const props = doc.paths["/v1/bids"].post.requestBody.content["application/json"].schema.properties;
    for (const f of ["bid_id", "auction_id", "bidder_id"]) {
      expect(props[f]).toMatchObject({ type: "string", minLength: 1, maxLength: 128, pattern: ID_PATTERN });
      expect(props[f].description).toContain("1-128 printable characters");
    }
    expect(doc.info.description).toContain("opaque text");
  });
});

import { describe, expect, it } from "vitest";
import {
  bidFromSubmission,
  bidRejection,
  decodeAuction,
  decodeBid,
  decodeBidSubmission,
  decodeFraudAlert,
  decodePriceUpdate,
  decodeUser,
  ID_MAX_CHARS,
  ID_PATTERN,
  idKeySegment,
  idMessage,
  isId,
  quoteId,
  rejectionId,
  SCHEMA,
} from "./events.ts";

const NOW = Date.parse("2026-11-22T10:00:00Z");
const NOW_ISO = "2026-11-22T10:00:00.000Z";

function bid(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    schema: SCHEMA.bid,
    bid_id: "b-1",
    auction_id: "a-1",
    bidder_id: "u-2",
    amount: 1500,
    currency: "USD",
    placed_at: "2026-11-22T09:59:59.500Z",
    received_at: "2026-11-22T10:00:00.000Z",
    source: "api",
    ...over,
  };
}

function detailOf(r: { ok: boolean; detail?: string }): string {
  expect(r.ok).toBe(false);
  return (r as { detail: string }).detail;
}

describe("decodeBid", () => {
  it("accepts a valid bid (string and Buffer) and normalises times to UTC", () => {
    const r = decodeBid(JSON.stringify(bid({ placed_at: "2026-11-22T11:59:59+02:00" })));
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.value.placed_at).toBe("2026-11-22T09:59:59.000Z");
    expect(decodeBid(Buffer.from(JSON.stringify(bid()))).ok).toBe(true);
  });

  it("rejects invalid JSON and non-objects", () => {
    expect(detailOf(decodeBid("{not json"))).toMatch(/^record: not valid JSON/);
    expect(detailOf(decodeBid("[1,2]"))).toBe("record: must be a JSON object, got an array");
    expect(detailOf(decodeBid("null"))).toBe("record: must be a JSON object, got null");
  });

  it("rejects huge records", () => {
    expect(detailOf(decodeBid("x".repeat(1024 * 1024 + 1)))).toMatch(/more than 1048576/);
  });

  it("names the missing field", () => {
    const b = bid();
    delete b.bidder_id;
    expect(detailOf(decodeBid(JSON.stringify(b)))).toContain("bidder_id: is required");
  });

  it("rejects fractional cents, zero, negative, string and unsafe amounts", () => {
    expect(detailOf(decodeBid(JSON.stringify(bid({ amount: 12.5 }))))).toBe(
      "amount: must be an integer number of minor units (cents); fractional minor units are not allowed, got 12.5",
    );
    expect(detailOf(decodeBid(JSON.stringify(bid({ amount: 0 }))))).toBe(
      "amount: must be greater than 0, got 0",
    );
    expect(detailOf(decodeBid(JSON.stringify(bid({ amount: -100 }))))).toBe(
      "amount: must be greater than 0, got -100",
    );
    expect(detailOf(decodeBid(JSON.stringify(bid({ amount: "15.00" }))))).toBe(
      'amount: must be an integer number of minor units, got "15.00"',
    );
    expect(detailOf(decodeBid(JSON.stringify(bid({ amount: 2 ** 60 }))))).toMatch(/must be at most/);
  });

  it("rejects bad currencies: pattern and ISO 4217 membership", () => {
    expect(detailOf(decodeBid(JSON.stringify(bid({ currency: "usd" }))))).toMatch(
      /^currency: must be an ISO 4217 code of 3 upper-case letters/,
    );
    expect(detailOf(decodeBid(JSON.stringify(bid({ currency: "DOLLARS" }))))).toMatch(/^currency:/);
    expect(detailOf(decodeBid(JSON.stringify(bid({ currency: "ABC" }))))).toBe(
      'currency: "ABC" is not an ISO 4217 currency code',
    );
  });

  it("rejects bad timestamps with the field path", () => {
    expect(detailOf(decodeBid(JSON.stringify(bid({ placed_at: "yesterday" }))))).toBe(
      'placed_at: must be an RFC 3339 date-time like 2026-01-02T03:04:05Z, got "yesterday"',
    );
    expect(detailOf(decodeBid(JSON.stringify(bid({ placed_at: "2026-02-30T10:00:00Z" }))))).toMatch(
      /placed_at: "2026-02-30T10:00:00Z" is not a valid calendar date-time/,
    );
    expect(detailOf(decodeBid(JSON.stringify(bid({ placed_at: 1763805600000 }))))).toMatch(
      /^placed_at: must be/,
    );
  });

  it("rejects timestamps far in the future relative to received_at, with a configurable skew", () => {
    const future = bid({ placed_at: "2026-11-22T10:10:00Z" });
    expect(detailOf(decodeBid(JSON.stringify(future)))).toBe(
      "placed_at: 2026-11-22T10:10:00.000Z is 600s after received_at 2026-11-22T10:00:00.000Z; at most 300s of clock skew is allowed",
    );
    expect(decodeBid(JSON.stringify(future), { maxFutureSkewMs: 15 * 60_000 }).ok).toBe(true);
    // Slightly ahead (client clock) is fine.
    expect(decodeBid(JSON.stringify(bid({ placed_at: "2026-11-22T10:00:30Z" }))).ok).toBe(true);
  });

  it("rejects wrong types of ids and source, and unknown schema versions", () => {
    expect(detailOf(decodeBid(JSON.stringify(bid({ bid_id: 42 }))))).toBe(
      "bid_id: must be 1-128 printable characters without leading or trailing spaces; got 42, not a string",
    );
    expect(detailOf(decodeBid(JSON.stringify(bid({ auction_id: "" }))))).toMatch(/^auction_id:/);
    expect(detailOf(decodeBid(JSON.stringify(bid({ source: "fax" }))))).toBe(
      'source: must be one of api, pos, iot, batch, got "fax"',
    );
    expect(detailOf(decodeBid(JSON.stringify(bid({ schema: "gavel.bid/v9" }))))).toBe(
      'schema: must be "gavel.bid/v2" (or the previous "gavel.bid/v1"), got "gavel.bid/v9"',
    );
    const noSchema = bid();
    delete noSchema.schema;
    expect(detailOf(decodeBid(JSON.stringify(noSchema)))).toMatch(/got nothing/);
  });

  describe("schema evolution", () => {
    it("accepts the previous version (v1) and upgrades it", () => {
      const v1 = bid({ schema: SCHEMA.bidV1 });
      delete v1.source;
      delete v1.received_at;
      const r = decodeBid(JSON.stringify(v1), { nowMs: NOW });
      expect(r.ok).toBe(true);
      if (r.ok) {
        expect(r.value.schema).toBe(SCHEMA.bid);
        expect(r.value.source).toBe("api");
        expect(r.value.received_at).toBe("2026-11-22T10:00:00.000Z");
      }
    });

    it("still validates v1 fields", () => {
      const v1 = bid({ schema: SCHEMA.bidV1, amount: 1.5 });
      expect(detailOf(decodeBid(JSON.stringify(v1)))).toMatch(/^amount: must be an integer/);
    });

    it("accepts and keeps unknown additional fields (current and previous versions)", () => {
      const r = decodeBid(JSON.stringify(bid({ device: { kind: "kiosk" }, campaign: "x" })));
      expect(r.ok).toBe(true);
      if (r.ok) expect((r.value as unknown as Record<string, unknown>).campaign).toBe("x");
      expect(decodeBid(JSON.stringify(bid({ schema: SCHEMA.bidV1, future_field: 1 }))).ok).toBe(true);
      const a = decodeAuction(JSON.stringify({ ...auction(), shipping: "free" }));
      expect(a.ok).toBe(true);
    });

    it("a v2 bid without source is malformed (v2 made it required)", () => {
      const b = bid();
      delete b.source;
      expect(detailOf(decodeBid(JSON.stringify(b)))).toContain("source: is required");
    });
  });
});

function auction(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
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
    ...over,
  };
}

describe("decodeAuction / decodeUser", () => {
  it("accepts a valid auction with optional fields absent or null", () => {
    expect(decodeAuction(JSON.stringify(auction())).ok).toBe(true);
    expect(decodeAuction(JSON.stringify(auction({ reserve_price: null, soft_close_seconds: null }))).ok).toBe(
      true,
    );
    expect(decodeAuction(JSON.stringify(auction({ reserve_price: 5000, soft_close_seconds: 30 }))).ok).toBe(
      true,
    );
  });

  it("checks cross-field rules", () => {
    expect(detailOf(decodeAuction(JSON.stringify(auction({ ends_at: "2026-11-22T08:00:00Z" }))))).toMatch(
      /^ends_at: .* must be after starts_at/,
    );
    expect(detailOf(decodeAuction(JSON.stringify(auction({ reserve_price: 10 }))))).toBe(
      "reserve_price: 10 must be at least start_price 1000",
    );
    expect(detailOf(decodeAuction(JSON.stringify(auction({ start_price: 10.5 }))))).toMatch(
      /^start_price: must be an integer number of minor units/,
    );
    expect(detailOf(decodeAuction(JSON.stringify(auction({ min_increment: 0 }))))).toMatch(
      /^min_increment: must be greater than 0/,
    );
  });

  it("validates users", () => {
    const u = {
      schema: SCHEMA.user,
      user_id: "u-1",
      created_at: "2026-01-01T00:00:00Z",
      country: "DE",
      rating: 4.5,
    };
    expect(decodeUser(JSON.stringify(u)).ok).toBe(true);
    expect(detailOf(decodeUser(JSON.stringify({ ...u, country: "Germany" })))).toMatch(/^country:/);
    expect(detailOf(decodeUser(JSON.stringify({ ...u, rating: 7 })))).toMatch(/^rating:/);
  });
});

describe("submissions and rejections", () => {
  it("decodes a client submission and builds the bid event", () => {
    const sub = {
      auction_id: "a-1",
      bidder_id: "u-2",
      amount: 100,
      currency: "EUR",
      placed_at: "2026-11-22T09:59:00Z",
    };
    const r = decodeBidSubmission(JSON.stringify(sub), { nowMs: NOW });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const b = bidFromSubmission(r.value, NOW, () => "gen-1");
    expect(b).toEqual({
      schema: SCHEMA.bid,
      bid_id: "gen-1",
      auction_id: "a-1",
      bidder_id: "u-2",
      amount: 100,
      currency: "EUR",
      placed_at: "2026-11-22T09:59:00.000Z",
      received_at: "2026-11-22T10:00:00.000Z",
      source: "api",
    });
    expect(decodeBid(JSON.stringify(b)).ok).toBe(true);
    expect(
      detailOf(
        decodeBidSubmission(JSON.stringify({ ...sub, placed_at: "2027-01-01T00:00:00Z" }), { nowMs: NOW }),
      ),
    ).toMatch(/in the future/);
  });

  it("keeps the raw record of a malformed bid and salvages its ids", () => {
    const raw = JSON.stringify(bid({ amount: 1.5 }));
    const rej = bidRejection(raw, "malformed", "amount: ...");
    expect(rej).toMatchObject({ reason: "malformed", bid_id: "b-1", auction_id: "a-1", amount: 1.5, raw });
    expect(rej.rejection_id).toBe(rejectionId(raw));
    expect(rej.rejection_id).toMatch(/^[0-9a-f]{32}$/);
    const garbage = bidRejection("%%%", "malformed", "x");
    expect(garbage).toMatchObject({ bid_id: null, auction_id: null, raw: "%%%" });
    expect(rejectionId("a")).not.toBe(rejectionId("b"));
  });

  it("decodes derived events with the generic decoder", () => {
    const p = {
      schema: SCHEMA.priceUpdate,
      auction_id: "a-1",
      version: 3,
      status: "open",
      current_price: 1200,
      leader_id: "u-2",
      bid_count: 2,
      currency: "USD",
      ends_at: "2026-11-22T11:00:00.000Z",
      updated_at: "2026-11-22T10:00:00.000Z",
    };
    expect(decodePriceUpdate(JSON.stringify(p)).ok).toBe(true);
    expect(detailOf(decodePriceUpdate(JSON.stringify({ ...p, version: 0 })))).toMatch(/^version:/);
  });
});

describe("identifiers are opaque text", () => {
  // Every one of these is an id: marketplaces name users like this.
  const good = [
    "d*elmer",
    "*champaignbubbles*",
    "Jürgen",
    "J\u0075\u0308rgen", // the same name in NFD: a different id, but a valid one
    "名前",
    "🦊",
    "👨‍👩‍👧", // ZWJ sequence
    "🏴󠁧󠁢󠁳󠁣󠁴󠁿", // flag with tag characters (category Cf)
    "a b  c",
    'Ölfass & Söhne, "GmbH"',
    "O'Brien",
    "x\u200By", // zero-width space inside: allowed (category Cf)
    "a\u00A0b", // no-break space inside
    "\\back\\slash",
    "%2F..%2Fetc/passwd",
    "'; DROP TABLE silver.bids; --",
    "g7-b-12345",
    "x",
    "x".repeat(ID_MAX_CHARS),
    "😀".repeat(ID_MAX_CHARS), // 128 code points, 256 UTF-16 units, 512 UTF-8 bytes
    "é".repeat(ID_MAX_CHARS),
  ];
  const bad: [string, unknown, RegExp][] = [
    ["empty", "", /got an empty string$/],
    ["129 code points", "x".repeat(129), /got 129 characters .*1 too many: shorten it to at most 128/],
    ["129 emoji", "😀".repeat(129), /got 129 characters/],
    ["leading space", " alice", /got a leading space U\+0020 in " alice"; remove it$/],
    ["trailing space", "alice ", /got a trailing space U\+0020 in "alice "; remove it$/],
    ["trailing no-break space", "alice\u00A0", /trailing no-break space U\+00A0 in "alice\\u00A0"/],
    ["leading ideographic space", "\u3000名前", /leading white space U\+3000/],
    ["leading BOM", "\uFEFFalice", /leading byte-order mark U\+FEFF/],
    ["tab", "a\tb", /got a control character U\+0009 \(tab\) at position 2 in "a\\u0009b"; remove it$/],
    ["newline", "ab\n", /control character U\+000A \(line feed\) at position 3/],
    ["carriage return", "\rab", /control character U\+000D \(carriage return\) at position 1/],
    ["NUL", "a\u0000b", /control character U\+0000 \(NUL\) at position 2/],
    ["BEL", "ab\u0007c", /control character U\+0007 at position 3 in "ab\\u0007c"/],
    ["escape", "\u001b[31mred", /control character U\+001B \(escape\) at position 1/],
    ["DEL", "a\u007f", /control character U\+007F \(delete\)/],
    ["NEL (C1)", "a\u0085b", /control character U\+0085 \(next line\) at position 2/],
    ["C1 CSI", "a\u009bb", /control character U\+009B/],
    ["line separator", "a\u2028b", /line separator U\+2028 at position 2/],
    ["paragraph separator", "a\u2029b", /paragraph separator U\+2029/],
    ["right-to-left override", "abc\u202Etxt.exe", /bidirectional control character U\+202E at position 4/],
    ["first strong isolate", "\u2068a", /bidirectional control character U\+2068 at position 1/],
    ["lone high surrogate", "a\uD83Db", /unpaired surrogate U\+D83D at position 2 in "a\\uD83Db"/],
    ["lone low surrogate", "\uDE00", /unpaired surrogate U\+DE00 at position 1/],
    ["surrogates reversed", "\uDE00\uD83D", /unpaired surrogate U\+DE00 at position 1/],
    ["a number", 42, /got 42, not a string$/],
    ["null", null, /got null, not a string$/],
  ];

  it("accepts printable Unicode text of 1-128 code points", () => {
    for (const id of good) {
      expect(isId(id), JSON.stringify(id)).toBe(true);
      for (const field of ["bid_id", "auction_id", "bidder_id"]) {
        const r = decodeBid(JSON.stringify(bid({ [field]: id })));
        expect(r.ok, `${field} ${JSON.stringify(id)}`).toBe(true);
        if (r.ok) expect((r.value as Record<string, unknown>)[field]).toBe(id); // kept exactly
      }
    }
    // Buffer input (the Kafka path): the UTF-8 bytes decode to the same id.
    const r = decodeBid(Buffer.from(JSON.stringify(bid({ bidder_id: "Jürgen 名前 🦊" })), "utf8"));
    expect(r.ok && r.value.bidder_id).toBe("Jürgen 名前 🦊");
    expect(Buffer.byteLength("😀".repeat(ID_MAX_CHARS))).toBe(512);
  });

  it("refuses controls, lone surrogates, bidi controls, outer white space and bad lengths, saying what and where", () => {
    for (const [what, id, message] of bad) {
      expect(isId(id), what).toBe(false);
      const detail = detailOf(decodeBid(JSON.stringify(bid({ bidder_id: id }))));
      expect(detail, what).toMatch(
        /^bidder_id: must be 1-128 printable characters without leading or trailing spaces; got /,
      );
      expect(detail, what).toMatch(message);
      // The message never carries a raw control, bidi, lone-surrogate or invisible space character
      // (logs, terminals)
      // (every character of it is a valid one-character id, or a plain space)
      expect(
        [...detail].filter((c) => c !== " " && !isId(c)),
        what,
      ).toEqual([]);
      expect(detail.isWellFormed(), what).toBe(true);
    }
    expect(idMessage("bidder_id", "ab\u0007c")).toBe(
      'bidder_id: must be 1-128 printable characters without leading or trailing spaces; got a control character U+0007 at position 3 in "ab\\u0007c"; remove it',
    );
    // A lone surrogate arrives as a JSON escape (raw bytes that are not UTF-8 decode to U+FFFD).
    const raw = JSON.stringify(bid()).replace('"u-2"', '"u\\ud800"');
    expect(detailOf(decodeBid(raw))).toMatch(/^bidder_id: .*unpaired surrogate U\+D800 at position 2/);
  });

  it("applies to every id field of every event, with the field named", () => {
    for (const field of ["bid_id", "auction_id", "bidder_id"])
      expect(detailOf(decodeBid(JSON.stringify(bid({ [field]: "a\tb" }))))).toMatch(
        new RegExp(`^${field}: `),
      );
    for (const field of ["bid_id", "auction_id", "bidder_id"]) {
      const d = decodeBidSubmission(JSON.stringify({ ...bid({ [field]: " x" }), schema: undefined }), {
        nowMs: NOW,
      });
      expect(detailOf(d)).toMatch(new RegExp(`^${field}: .*leading space`));
    }
    const auction = {
      schema: SCHEMA.auction,
      auction_id: "Ölfass-1",
      item_id: "名前-item",
      seller_id: "*champaignbubbles*",
      title: "Oak barrel",
      category: "home",
      currency: "EUR",
      start_price: 1000,
      min_increment: 100,
      starts_at: "2026-11-22T09:00:00Z",
      ends_at: "2026-11-22T11:00:00Z",
    };
    expect(decodeAuction(JSON.stringify(auction)).ok).toBe(true);
    for (const field of ["auction_id", "item_id", "seller_id"])
      expect(detailOf(decodeAuction(JSON.stringify({ ...auction, [field]: "x\n" })))).toMatch(
        new RegExp(`^${field}: .*line feed`),
      );
    const user = { schema: SCHEMA.user, user_id: "d*elmer", created_at: NOW_ISO, country: "DE", rating: 4 };
    expect(decodeUser(JSON.stringify(user)).ok).toBe(true);
    expect(detailOf(decodeUser(JSON.stringify({ ...user, user_id: "" })))).toMatch(
      /^user_id: .*empty string$/,
    );
    const alert = {
      schema: SCHEMA.fraudAlert,
      bid_id: "b 1",
      auction_id: "a/1",
      bidder_id: "🦊",
      score: 0.9,
      quarantined: false,
      signals: [],
      created_at: NOW_ISO,
    };
    expect(decodeFraudAlert(JSON.stringify(alert)).ok).toBe(true);
    expect(detailOf(decodeFraudAlert(JSON.stringify({ ...alert, bidder_id: "🦊 " })))).toMatch(
      /^bidder_id: .*trailing space/,
    );
  });

  it("publishes the same rule as a JSON Schema pattern, with and without the u flag", () => {
    const plain = new RegExp(ID_PATTERN);
    const unicode = new RegExp(ID_PATTERN, "u");
    // JSON Schema: minLength/maxLength count code points.
    const schemaCheck = (re: RegExp, s: string) => {
      const n = [...s].length;
      return n >= 1 && n <= ID_MAX_CHARS && re.test(s);
    };
    // Characters around every boundary of the rule, paired and alone.
    const chars = [
      ..."aZ09 *-_/:@.'\"\\%ü名🦊",
      ..."\u0000\u0009\u000a\u001f\u007f\u0080\u0085\u009f\u00a0\u00ad\u1680\u2000\u200a\u200b\u200d\u2028\u2029\u202a\u202e\u202f\u205f\u2060\u2066\u2069\u3000\ufeff\ufffd\uffff",
      "\uD800",
      "\uDBFF",
      "\uDC00",
      "\uDFFF",
      "\u{10FFFF}",
      "\u{E0001}",
    ];
    let seed = 7;
    const rnd = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    const samples = [...good, ...bad.map(([, v]) => v).filter((v): v is string => typeof v === "string")];
    for (const a of chars) for (const b of chars) samples.push(a, a + b, `x${a}${b}y`, `${a}x${b}`);
    for (let i = 0; i < 5000; i++)
      samples.push(Array.from({ length: 1 + rnd(6) }, () => chars[rnd(chars.length)]).join(""));
    for (const s of samples) {
      const expected = isId(s);
      expect(schemaCheck(plain, s), JSON.stringify(s)).toBe(expected);
      expect(schemaCheck(unicode, s), JSON.stringify(s)).toBe(expected);
    }
  });

  it("escapes ids for object keys, file names and labels (idKeySegment)", () => {
    expect(idKeySegment("d*elmer")).toBe("d%2Aelmer");
    expect(idKeySegment("..")).toBe("%2E%2E");
    expect(idKeySegment("a/b c")).toBe("a%2Fb%20c");
    expect(idKeySegment("Jürgen")).toBe("J%C3%BCrgen");
    expect(idKeySegment("g7-a_17")).toBe("g7-a_17");
    for (const id of good) {
      const seg = idKeySegment(id);
      expect(seg, id).toMatch(/^[A-Za-z0-9_%-]+$/);
      expect(decodeURIComponent(seg)).toBe(id);
    }
  });

  it("quotes ids safely in messages", () => {
    expect(quoteId('say "hi"\\')).toBe('"say \\"hi\\"\\\\"');
    expect(quoteId("a\u001b[2Jb")).toBe('"a\\u001B[2Jb"');
    expect(quoteId("x".repeat(200))).toBe(`"${"x".repeat(40)}..."`);
    // a cut never splits a surrogate pair
    expect(quoteId(`${"x".repeat(39)}${"😀".repeat(20)}`).isWellFormed()).toBe(true);
  });
});

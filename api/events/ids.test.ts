import { describe, expect, it } from "vitest";
import { auction, bid, detailOf, NOW, NOW_ISO } from "../../test/event-fixtures.ts";
import { decodeAuction, decodeBid, decodeBidSubmission, decodeUser, decodeWith } from "./decode.ts";
import { ID_MAX_CHARS, ID_PATTERN, idKeySegment, idMessage, isId, quoteId } from "./ids.ts";
import { FraudAlertSchema, SCHEMA } from "./types.ts";

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
    const auctionRecord = auction({
      auction_id: "Ölfass-1",
      item_id: "名前-item",
      seller_id: "*champaignbubbles*",
      title: "Oak barrel",
      category: "home",
      currency: "EUR",
    });
    expect(decodeAuction(JSON.stringify(auctionRecord)).ok).toBe(true);
    for (const field of ["auction_id", "item_id", "seller_id"])
      expect(detailOf(decodeAuction(JSON.stringify({ ...auctionRecord, [field]: "x\n" })))).toMatch(
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
    expect(decodeWith(FraudAlertSchema, JSON.stringify(alert)).ok).toBe(true);
    expect(detailOf(decodeWith(FraudAlertSchema, JSON.stringify({ ...alert, bidder_id: "🦊 " })))).toMatch(
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

import { describe, expect, it } from "vitest";
import { encodeHeldMeta, fits, HELD_META_MAX_BYTES, parseHeldMeta } from "./held-meta.ts";

describe("held-bid offset metadata", () => {
  it("round-trips scattered, consecutive and empty hold sets", () => {
    const cases = [
      { u: 10, h: [] },
      { u: 10, h: [3] },
      { u: 1_000_000, h: [0, 1, 2, 3, 7, 9, 10, 999_999] },
      { u: 2 ** 40, h: [2 ** 40 - 5, 2 ** 40 - 4, 2 ** 40 - 1] },
    ];
    for (const c of cases) expect(parseHeldMeta(encodeHeldMeta(c))).toEqual(c);
  });

  it("sorts and de-duplicates the held offsets", () => {
    expect(parseHeldMeta(encodeHeldMeta({ u: 20, h: [9, 3, 4, 9, 5] }))).toEqual({ u: 20, h: [3, 4, 5, 9] });
  });

  it("writes a long run of consecutive held bids in a few bytes", () => {
    const h = Array.from({ length: 50_000 }, (_, i) => 1_000 + i);
    const s = encodeHeldMeta({ u: 60_000, h });
    expect(s).toBe('{"v":2,"u":60000,"h":"rs+12kv"}');
    expect(fits(s)).toBe(true);
  });

  it("reports when a scattered hold set exceeds the broker's metadata limit", () => {
    const small = Array.from({ length: 100 }, (_, i) => i * 2);
    expect(fits(encodeHeldMeta({ u: 1_000, h: small }))).toBe(true);
    const scattered = Array.from({ length: 2_000 }, (_, i) => i * 1_000);
    const s = encodeHeldMeta({ u: 3_000_000, h: scattered });
    expect(Buffer.byteLength(s)).toBeGreaterThan(HELD_META_MAX_BYTES);
    expect(fits(s)).toBe(false);
  });

  it("keeps the arrival of held bids that arrived after their own timestamp", () => {
    const a = new Map([
      [7, 1_764_583_200_123],
      [1_003, 1_764_583_260_000],
    ]);
    const s = encodeHeldMeta({ u: 2_000, h: [3, 7, 1_003], a });
    expect(parseHeldMeta(s)).toEqual({ u: 2_000, h: [3, 7, 1_003], a });
    // Arrivals of offsets no longer held are dropped; none left: no field.
    expect(encodeHeldMeta({ u: 2_000, h: [3], a })).toBe(encodeHeldMeta({ u: 2_000, h: [3] }));
    expect(parseHeldMeta('{"v":2,"u":5,"h":"1","a":"1~x~y"}')).toBeUndefined();
  });

  it("keeps the clock at u, and only as many arrivals as fit, the oldest first", () => {
    expect(parseHeldMeta(encodeHeldMeta({ u: 9, h: [], c: 1_764_583_200_000 }))).toEqual({
      u: 9,
      h: [],
      c: 1_764_583_200_000,
    });
    // 600 scattered held bids, each with an arrival: the held offsets fit, not every arrival.
    const h = Array.from({ length: 600 }, (_, i) => i * 3);
    const a = new Map(h.map((o) => [o, 1_764_583_200_000 + o]));
    const s = encodeHeldMeta({ u: 5_000, h, a, c: 1_764_583_300_000 });
    expect(fits(s)).toBe(true);
    const back = parseHeldMeta(s);
    expect(back?.h).toEqual(h);
    expect(back?.c).toBe(1_764_583_300_000);
    const kept = [...(back?.a ?? [])];
    expect(kept.length).toBeGreaterThan(10);
    expect(kept.length).toBeLessThan(h.length);
    expect(kept).toEqual([...a].slice(0, kept.length));
  });

  it("reads the first format (an array of offsets) so an upgrade resumes", () => {
    expect(parseHeldMeta('{"u":12,"h":[4,7]}')).toEqual({ u: 12, h: [4, 7] });
  });

  it("ignores metadata it did not write", () => {
    for (const s of [null, "", "x", "{}", '{"u":"1","h":[]}', '{"u":1,"h":"-3"}', '{"u":1,"h":[1.5]}', "[1]"])
      expect(parseHeldMeta(s)).toBeUndefined();
  });
});

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

  it("reads the first format (an array of offsets) so an upgrade resumes", () => {
    expect(parseHeldMeta('{"u":12,"h":[4,7]}')).toEqual({ u: 12, h: [4, 7] });
  });

  it("ignores metadata it did not write", () => {
    for (const s of [null, "", "x", "{}", '{"u":"1","h":[]}', '{"u":1,"h":"-3"}', '{"u":1,"h":[1.5]}', "[1]"])
      expect(parseHeldMeta(s)).toBeUndefined();
  });
});

import { describe, expect, it } from "vitest";
import type { KafkaRecord } from "../kafka/transport.ts";
import { objectKey, PartitionSegmenter, toLine } from "./segments.ts";

const T0 = Date.parse("2026-11-22T10:59:58Z");
const rec = (
  offset: number,
  ts = T0,
  value: Buffer | null = Buffer.from(`{"n":${offset}}`),
): KafkaRecord => ({
  topic: "p.bids",
  partition: 3,
  offset,
  key: "a1",
  value,
  timestamp: ts,
});

describe("bronze segments", () => {
  it("cuts at UTC hour changes and at the record limit; keys derive from topic/partition/offsets", () => {
    const s = new PartitionSegmenter("p.bids", 3, { maxRecords: 2, maxBytes: 1 << 20 });
    const done = [
      ...s.add(rec(10), 0),
      ...s.add(rec(11), 0),
      ...s.add(rec(12), 0), // record limit
      ...s.add(rec(13, T0 + 5_000), 0), // next hour
    ];
    expect(done.map((d) => [d.first, d.last, d.hour])).toEqual([
      [10, 11, "2026-11-22/10"],
      [12, 12, "2026-11-22/10"],
    ]);
    const open = s.takeOpen();
    expect(open && objectKey("pipe/", open)).toBe(
      "pipe/bronze/topic=p.bids/date=2026-11-22/hour=11/3-13-13.ndjson.gz",
    );
  });

  it("replays a cut decided before a crash exactly, whatever the limits say", () => {
    const s = new PartitionSegmenter("p.bids", 3, { maxRecords: 1, maxBytes: 1 << 20 }, 12);
    expect(s.add(rec(10), 0)).toEqual([]);
    expect(s.takeOpen()).toBeUndefined(); // may not flush early: the key must be 3-10-12
    expect(s.add(rec(11, T0 + 5_000), 0)).toEqual([]);
    const done = s.add(rec(12), 0);
    expect(done.map((d) => [d.first, d.last])).toEqual([[10, 12]]);
    expect(s.pendingCut).toBeUndefined();
  });

  it("ignores records delivered again after a failed batch (each offset once, in order)", () => {
    const s = new PartitionSegmenter("p.bids", 3, { maxRecords: 2, maxBytes: 1 << 20 });
    const done = [...s.add(rec(10), 0), ...s.add(rec(11), 0), ...s.add(rec(12), 0)];
    expect(done.map((d) => [d.first, d.last])).toEqual([[10, 11]]);
    // the batch 10..13 comes again (its write failed after 12 was added)
    for (const o of [10, 11, 12]) expect(s.add(rec(o), 0)).toEqual([]);
    expect(s.add(rec(13), 0)).toEqual([]);
    expect(s.open?.lines.map((l) => (JSON.parse(l) as { offset: number }).offset)).toEqual([12, 13]);
  });

  it("keeps values as text, binary as base64, tombstones as null", () => {
    expect(toLine(rec(1)).value).toBe('{"n":1}');
    expect(toLine(rec(1, T0, Buffer.from([0xff, 0xfe]))).value_base64).toBe("//4=");
    expect(toLine(rec(1, T0, null)).value).toBeNull();
  });
});

import { describe, expect, it } from "vitest";
import { decodeBid } from "../api/events/decode.ts";
import { BidEventSchema } from "../api/events/types.ts";
import { FEATURE_NAMES } from "../processors/fraud/model.ts";
import {
  BID_RECORD_BYTES,
  bidPayloads,
  COPY_COLUMNS,
  FLOOR_PATH,
  fitJson,
  floorPath,
  floorRatio,
  parseConsumerPerf,
  parseProducerPerf,
  parsePsqlCopy,
  shellLine,
  silverBidCsv,
} from "./floors.ts";
import { floorRatioFigure } from "./main.ts";
import type { Figure } from "./stages.ts";

// Output of the kafka-tools 4.1.1 perf tools and psql 15, as captured on the test environment.
const PRODUCER_OUT = `Reading payloads from: /work/main/.testenv/bench/x/floors/bid-payloads.txt
Number of messages read: 1000
486911 records sent, 97362.7 records/sec (23.31 MB/sec), 233.17 ms avg latency, 649.00 ms max latency.
1000000 records sent, 99403.4 records/sec (23.79 MB/sec), 235.75 ms avg latency, 649.00 ms max latency, 233 ms 50th, 446 ms 95th, 458 ms 99th, 493 ms 99.9th.
`;

const CONSUMER_OUT = `start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
2026-12-07 03:35:37:329, 2026-12-07 03:35:39:003, 4.7874, 2.8599, 20000, 11947.4313, 1371, 303, 15.8001, 66006.6007
`;

describe("Kafka perf tools' output", () => {
  it("takes the producer tool's summary line, not its progress lines", () => {
    const p = parseProducerPerf(PRODUCER_OUT);
    expect(p).toEqual({
      records: 1_000_000,
      recordsPerS: 99403.4,
      mbPerS: 23.79,
      avgLatencyMs: 235.75,
      maxLatencyMs: 649,
      p50Ms: 233,
      p95Ms: 446,
      p99Ms: 458,
      p999Ms: 493,
    });
  });

  it("fails on producer output without a summary (an error, a timeout) and says what it saw", () => {
    expect(() => parseProducerPerf("Exception in thread main\nTimeoutException: x\n")).toThrow(
      /no summary line.*TimeoutException/,
    );
    // A progress line alone is not the summary.
    expect(() => parseProducerPerf(PRODUCER_OUT.split("\n").slice(0, 3).join("\n"))).toThrow(/no summary/);
  });

  it("reads the consumer tool's result by its header, the rate without the group join", () => {
    const c = parseConsumerPerf(CONSUMER_OUT);
    expect(c).toEqual({
      records: 20000,
      mb: 4.7874,
      recordsPerS: 11947.4313,
      rebalanceMs: 1371,
      fetchMs: 303,
      fetchRecordsPerS: 66006.6007,
    });
    const warned = `WARNING: Exiting before consuming the expected number of messages: timeout (10000 ms) exceeded.\n${CONSUMER_OUT}`;
    expect(parseConsumerPerf(warned).records).toBe(20000);
    expect(() => parseConsumerPerf("Exception in thread main\n")).toThrow(/no result line/);
  });
});

describe("psql \\copy with \\timing", () => {
  it("reads the rows and psql's time of the COPY", () => {
    const out = "Timing is on.\nCOPY 1000000\nTime: 8123.456 ms (00:08.123)\n";
    expect(parsePsqlCopy(out)).toEqual({ rows: 1_000_000, ms: 8123.456 });
    expect(parsePsqlCopy("Timing is on.\nCOPY 2\nTime: 0.233 ms\n")).toEqual({ rows: 2, ms: 0.233 });
    expect(() => parsePsqlCopy("Timing is on.\nERROR: relation does not exist\n")).toThrow(/COPY n/);
  });
});

describe("floor of the pipeline's path", () => {
  it("adds the seconds per record of 3 produces, 3 consumes and 1 COPY row", () => {
    expect(FLOOR_PATH).toEqual({ produce: 3, consume: 3, copyRows: 1 });
    // 3/300,000 + 3/600,000 + 1/100,000 = 10 + 5 + 10 µs = 25 µs per bid -> 40,000 bids/s.
    const f = floorPath({ produce: 300_000, consume: 600_000, copy: 100_000 });
    expect(f.secondsPerBid).toBeCloseTo(25e-6, 12);
    expect(f.bidsPerS).toBeCloseTo(40_000, 6);
    expect(floorRatio(4_000, f.bidsPerS)).toBeCloseTo(0.1, 9);
  });

  it("e2e_vs_floor_ratio from the run's figures, e2e first, else the 1-replica scale step", () => {
    const f = (name: string, value: number): Figure => ({ name, value, unit: "bids/s", runs: 3 });
    const floor = f("floor_path_bids_per_s", 40_000);
    expect(floorRatioFigure([floor], 3)).toBeUndefined();
    expect(floorRatioFigure([f("e2e_max_sustained_bids_per_s", 4_000)], 3)).toBeUndefined();
    const both = floorRatioFigure(
      [f("e2e_scale_1_bids_per_s", 3_000), f("e2e_max_sustained_bids_per_s", 4_000), floor],
      3,
    );
    expect(both).toMatchObject({ name: "e2e_vs_floor_ratio", value: 0.1, unit: "ratio" });
    expect(both?.e2eFigure).toBe("e2e_max_sustained_bids_per_s");
    const scaleOnly = floorRatioFigure([f("e2e_scale_1_bids_per_s", 3_000), floor], 1);
    expect(scaleOnly).toMatchObject({ value: 0.075, e2eFigure: "e2e_scale_1_bids_per_s" });
  });
});

describe("floor data", () => {
  it("fits JSON to a size with spaces before the closing brace", () => {
    expect(fitJson('{"a":1}', 10)).toBe('{"a":1   }');
    expect(JSON.parse(fitJson('{"a":1}', 10) as string)).toEqual({ a: 1 });
    expect(fitJson('{"a":1}', 5)).toBeUndefined();
  });

  it("payloads are real bid records of exactly 251 bytes, one per line", () => {
    const ps = bidPayloads("flr-abc12345", "bench-abc12345-floor", 50);
    expect(ps).toHaveLength(50);
    for (const p of ps) {
      expect(Buffer.byteLength(p)).toBe(BID_RECORD_BYTES);
      expect(p).not.toContain("\n");
      const b = JSON.parse(p) as Record<string, unknown>;
      expect(b.schema).toBe("gavel.bid/v2");
      // Every field of the contract's bid, in its order, and nothing else; a bid the stream accepts.
      expect(Object.keys(b)).toEqual(Object.keys(BidEventSchema.properties));
      expect(decodeBid(p).ok).toBe(true);
    }
  });

  it("CSV rows have the COPY's columns, the features array quoted", () => {
    const a = { ids: ["x-a0", "x-a1"], startPrice: 1000, increment: 10 };
    const line = silverBidCsv(a, 7, Date.UTC(2026, 0, 1), "flr", "t.bids.accepted", 6);
    const fields = line.match(/("[^"]*"|[^,]+)/g) ?? [];
    expect(fields).toHaveLength(COPY_COLUMNS.length);
    expect(fields[0]).toBe("flr-7");
    expect(fields[8]).toMatch(
      new RegExp(`^"\\{(\\d\\.\\d{4},){${FEATURE_NAMES.length - 1}}\\d\\.\\d{4}\\}"$`),
    );
    expect(fields.slice(-3)).toEqual(["t.bids.accepted", "1", "1"]);
  });
});

describe("shellLine", () => {
  it("quotes what a shell would split or expand, and single quotes inside", () => {
    expect(shellLine("psql", ["-c", "\\timing on", "-c", "\\copy t from '/a b.csv' with csv"])).toBe(
      "psql -c '\\timing on' -c '\\copy t from '\\''/a b.csv'\\'' with csv'",
    );
    expect(shellLine("java", ["-cp", "/x/libs/*", "--throughput", "-1", "acks=all"])).toBe(
      "java -cp '/x/libs/*' --throughput -1 acks=all",
    );
  });
});

import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { bidFor, cpuSeconds, IMAGE_NODE_OPTIONS, median, percentile, REPO, sumMetric } from "./lib.ts";
import { main } from "./main.ts";
import { moduleOf, summarize, summarizeHeap } from "./profile.ts";

describe("bench statistics", () => {
  it("median of odd and even counts, NaN when empty", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });

  it("nearest-rank percentiles", () => {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(xs, 50)).toBe(50);
    expect(percentile(xs, 99)).toBe(99);
    expect(percentile(xs, 100)).toBe(100);
    expect(percentile([7], 99)).toBe(7);
  });
});

describe("sumMetric", () => {
  const text = [
    "# HELP gavel_bid_processor_records_in_total Input records",
    'gavel_bid_processor_records_in_total{topic="p.bids"} 120',
    'gavel_bid_processor_records_in_total{topic="p.auctions"} 5',
    'gavel_bid_processor_records_in_total_extra{topic="p.bids"} 999',
    "silver_writer_rows_total 7",
  ].join("\n");

  it("sums samples with or without the gavel_ prefix, filtered by labels", () => {
    expect(sumMetric(text, "bid_processor_records_in_total")).toBe(125);
    expect(sumMetric(text, "bid_processor_records_in_total", { topic: "p.bids" })).toBe(120);
    expect(sumMetric(text, "silver_writer_rows_total")).toBe(7);
    expect(sumMetric(text, "missing_total")).toBe(0);
  });
});

describe("processes as in the image", () => {
  it("the bench runs processors with the Dockerfile's NODE_OPTIONS", () => {
    const dockerfile = readFileSync(`${REPO}/Dockerfile`, "utf8");
    expect(dockerfile).toContain(`NODE_OPTIONS="${IMAGE_NODE_OPTIONS}"`);
  });
});

/** The shell's node child has exited: its only child left is `sleep`. */
function childGone(shell: number): boolean {
  const kids = readFileSync(`/proc/${shell}/task/${shell}/children`, "utf8")
    .trim()
    .split(/\s+/)
    .filter(Boolean);
  return kids.every((k) => !readFileSync(`/proc/${k}/cmdline`, "utf8").includes("Date.now()"));
}

describe("cpuSeconds", () => {
  it("reads a process's CPU time and, with tree, its children's", async () => {
    const before = cpuSeconds(process.pid);
    const end = Date.now() + 300;
    while (Date.now() < end) Math.sqrt(Math.random());
    expect(cpuSeconds(process.pid) - before).toBeGreaterThan(0.1);
    // A shell whose child spins for 0.5 s: only the tree count sees the child's time.
    const sh = spawn("sh", [
      "-c",
      `${JSON.stringify(process.execPath)} -e "const e=Date.now()+500;while(Date.now()<e);" ; sleep 5`,
    ]);
    try {
      let childTime = 0;
      for (let i = 0; i < 100 && childTime <= 0.1; i++) {
        await new Promise((r) => setTimeout(r, 50));
        childTime = cpuSeconds(sh.pid as number, true) - cpuSeconds(sh.pid as number);
      }
      expect(childTime).toBeGreaterThan(0.1);
      // After the child exited (the shell waited for it, now in `sleep`), its time still counts.
      const exited = Date.now() + 10_000;
      while (Date.now() < exited && !childGone(sh.pid as number)) await new Promise((r) => setTimeout(r, 50));
      expect(childGone(sh.pid as number)).toBe(true);
      expect(cpuSeconds(sh.pid as number, true) - cpuSeconds(sh.pid as number)).toBeGreaterThan(0.1);
    } finally {
      sh.kill("SIGKILL");
    }
    expect(cpuSeconds(2 ** 22 + 7)).toBeNaN();
  });
});

describe("bidFor", () => {
  it("spreads bids over auctions with amounts rising per auction", () => {
    const a = { ids: ["a0", "a1"], startPrice: 1000, increment: 10 };
    const b0 = bidFor(a, 0, 0, "t");
    const b2 = bidFor(a, 2, 0, "t");
    expect(b0.auction_id).toBe("a0");
    expect(b2.auction_id).toBe("a0");
    expect(b2.amount - b0.amount).toBeGreaterThanOrEqual(a.increment);
    expect(bidFor(a, 1, 0, "t").auction_id).toBe("a1");
    expect(b0.bid_id).toBe("t-0");
    expect(b0.placed_at).toBe("1970-01-01T00:00:00.000Z");
  });
});

describe("profile summary", () => {
  it("names packages and files and adds self time", () => {
    expect(moduleOf("file:///x/node_modules/kafkajs/src/a.js", "f")).toBe("kafkajs");
    expect(moduleOf("file:///x/node_modules/@opentelemetry/core/a.js", "f")).toBe("@opentelemetry/core");
    expect(moduleOf("", "(garbage collector)")).toBe("((garbage collector))");
    const s = summarize({
      nodes: [
        { id: 1, callFrame: { functionName: "(root)", url: "", lineNumber: -1 } },
        {
          id: 2,
          callFrame: { functionName: "hot", url: "file:///x/node_modules/kafkajs/a.js", lineNumber: 9 },
        },
      ],
      samples: [2, 2, 1],
      timeDeltas: [3000, 1000, 1000],
      startTime: 0,
      endTime: 5000,
    });
    expect(s.totalMs).toBe(5);
    expect(s.byModule[0]).toEqual({ name: "kafkajs", ms: 4, pct: 80 });
    expect(s.byFunction[0]?.name).toBe("hot kafkajs/a.js:10");
  });

  it("adds the live bytes of a heap profile by allocation site and module", () => {
    const frame = (functionName: string, url: string) => ({ functionName, url, lineNumber: 0 });
    const auction = `file://${REPO}/processors/domain/auction.ts`;
    const s = summarizeHeap({
      head: {
        callFrame: frame("(root)", ""),
        selfSize: 0,
        children: [
          { callFrame: frame("remember", auction), selfSize: 3 * 1048576 },
          {
            callFrame: frame("decode", "file:///x/node_modules/kafkajs/d.js"),
            selfSize: 1048576,
            children: [{ callFrame: frame("remember", auction), selfSize: 0 }],
          },
        ],
      },
    });
    expect(s.totalMiB).toBe(4);
    expect(s.byModule[0]).toEqual({ name: "processors/domain/auction.ts", mib: 3, pct: 75 });
    expect(s.byFunction.map((r) => r.name)).toEqual([
      "remember processors/domain/auction.ts:1",
      "decode kafkajs/d.js:1",
    ]);
  });
});

describe("bench command line", () => {
  it("prints usage and exits 2 on an unknown flag or benchmark, before touching any service", async () => {
    const writes: string[] = [];
    const orig = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((s: string) => {
      writes.push(String(s));
      return true;
    }) as typeof process.stderr.write;
    try {
      await main(["--bogus"]);
      expect(process.exitCode).toBe(2);
      await main(["--only", "nope"]);
      expect(process.exitCode).toBe(2);
      await main(["--rates", "fast"]);
      expect(process.exitCode).toBe(2);
    } finally {
      process.stderr.write = orig;
      process.exitCode = 0;
    }
    expect(writes.join("")).toContain("usage: npm run bench");
    expect(writes.join("")).toContain("unknown benchmark 'nope'");
    expect(writes.join("")).toMatch(/--only [a-z0-9,]*floors,scale/);
  });
});

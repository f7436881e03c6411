import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../lib/log.ts";
import { MemoryBroker, MemoryTransport, murmur2, partitionForKey } from "./memory.ts";
import { readToEnd } from "./read.ts";
import type { Admin, GroupConsumer, KafkaRecord, Producer, TopicPartition, Transport } from "./transport.ts";
import { tpKey } from "./transport.ts";

const logger = createLogger("memory-test", "silent");
const require = createRequire(import.meta.url);
// kafkajs's own murmur2 (the default partitioner of the real transport), as the reference.
const kafkajsMurmur2 = require("kafkajs/src/producer/partitioners/default/murmur2.js") as (
  key: Buffer | string,
) => number;

async function until(cond: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function setup(
  topics: Record<string, number>,
  configs: Record<string, Record<string, string>> = {},
): Promise<MemoryTransport> {
  const t = new MemoryTransport(new MemoryBroker({ logger, compactEvery: 1_000_000 }));
  const admin = await t.admin();
  await admin.createTopics(
    Object.entries(topics).map(([name, partitions]) => ({
      name,
      partitions,
      ...(configs[name] ? { configs: configs[name] } : {}),
    })),
  );
  return t;
}

/** A consumer that records every delivered record and marks + commits each batch. */
function collector(
  t: Transport,
  groupId: string,
  opts: {
    commit?: boolean;
    readUncommitted?: boolean;
    fromBeginning?: boolean;
    coPartitioned?: boolean;
  } = {},
) {
  const seen: KafkaRecord[] = [];
  const assignments: { assigned: TopicPartition[]; revoked: TopicPartition[] }[] = [];
  const c: GroupConsumer = t.consumer({
    groupId,
    ...(opts.readUncommitted ? { readUncommitted: true } : {}),
    ...(opts.fromBeginning === false ? { fromBeginning: false } : {}),
    ...(opts.coPartitioned ? { coPartitioned: true } : {}),
  });
  const handlers = {
    onAssignment: (assigned: readonly TopicPartition[], revoked: readonly TopicPartition[]) => {
      assignments.push({ assigned: [...assigned], revoked: [...revoked] });
    },
    eachBatch: async (
      b: { topic: string; partition: number; records: readonly KafkaRecord[] },
      ctx: { markProcessed(o: number): void },
    ) => {
      seen.push(...b.records);
      const last = b.records.at(-1)!;
      if (opts.commit !== false)
        await c.commit([{ topic: b.topic, partition: b.partition, offset: last.offset + 1 }]);
      ctx.markProcessed(last.offset);
    },
  };
  return { c, seen, assignments, handlers };
}

const values = (rs: readonly KafkaRecord[]) => rs.map((r) => r.value?.toString());

/** Reads `topic` to its end (read_committed, within 2 s), as a processor rebuilding its state does. */
function readAll(t: Transport, admin: Admin, topic: string, onRecord: (r: KafkaRecord) => void) {
  return readToEnd({ transport: t, admin, topic, groupPrefix: "read", onRecord, timeoutMs: 2_000 });
}

/** Sends the numbered records `k<i>` = `"<i>"` for i in [from, from + n) to `topic`. */
function sendNumbered(p: Producer, topic: string, from: number, n: number): Promise<void> {
  return p.send([
    {
      topic,
      messages: Array.from({ length: n }, (_, i) => ({ key: `k${from + i}`, value: String(from + i) })),
    },
  ]);
}

describe("murmur2 partitioner", () => {
  it("matches Kafka's Java test vectors", () => {
    // org.apache.kafka.common.utils.UtilsTest#testMurmur2
    const vectors: [string, number][] = [
      ["21", -973932308],
      ["foobar", -790332482],
      ["a-little-bit-long-string", -985981536],
      ["a-little-bit-longer-string", -1486304829],
      ["lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971],
      ["abc", 479470107],
    ];
    for (const [k, h] of vectors) expect(murmur2(Buffer.from(k))).toBe(h);
  });

  it("agrees with kafkajs's partitioner for many keys (same partition as a real cluster)", () => {
    for (let i = 0; i < 2_000; i++) {
      const key = `a-${i}-${(i * 7919).toString(36)}-é`;
      expect(murmur2(Buffer.from(key))).toBe(kafkajsMurmur2(key));
      expect(partitionForKey(key, 12)).toBe((kafkajsMurmur2(key) & 0x7fffffff) % 12);
    }
  });
});

describe("MemoryTransport: producing and consuming", () => {
  it("partitions by key, numbers offsets per partition and keeps per-key order", async () => {
    const t = await setup({ bids: 4 });
    const p = await t.producer();
    const keys = ["a1", "a2", "a3", "a4", "a5"];
    for (let i = 0; i < 50; i++)
      await p.send([{ topic: "bids", messages: [{ key: keys[i % 5]!, value: `${keys[i % 5]}:${i}` }] }]);
    await p.send([{ topic: "bids", messages: [{ key: null, value: "explicit", partition: 3 }] }]);
    const { c, seen, handlers } = collector(t, "g1");
    await c.run(["bids"], handlers);
    await until(() => seen.length === 51);
    await c.stop();
    for (const r of seen) {
      if (r.key !== null) expect(r.partition).toBe(partitionForKey(r.key, 4));
    }
    for (const k of keys) {
      const mine = seen.filter((r) => r.key === k);
      expect(mine).toHaveLength(10);
      const order = mine.map((r) => Number(r.value!.toString().split(":")[1]));
      expect(order).toEqual([...order].sort((a, b) => a - b));
      const offs = mine.map((r) => r.offset);
      expect(offs).toEqual([...offs].sort((a, b) => a - b));
    }
    const admin = await t.admin();
    const offsets = await admin.topicOffsets("bids");
    expect(offsets.reduce((n, o) => n + o.high, 0)).toBe(51);
    expect(seen.find((r) => r.value?.toString() === "explicit")?.partition).toBe(3);
    await expect(
      p.send([{ topic: "bids", messages: [{ key: null, value: "x", partition: 9 }] }]),
    ).rejects.toThrow(/no partition 9/);
    await expect(p.send([{ topic: "nope", messages: [{ key: "k", value: "x" }] }])).rejects.toThrow(
      /does not host topic nope/,
    );
  });

  it("resumes a group from its committed offsets, with metadata, and honours fromBeginning=false", async () => {
    const t = await setup({ t: 1 });
    const p = await t.producer();
    await p.send([{ topic: "t", messages: ["a", "b", "c"].map((v) => ({ key: "k", value: v })) }]);
    const first = collector(t, "g");
    await first.c.run(["t"], first.handlers);
    await until(() => first.seen.length === 3);
    await first.c.commit([{ topic: "t", partition: 0, offset: 2, metadata: '{"cut":5}' }]);
    await first.c.stop();
    const admin = await t.admin();
    expect(await admin.groupOffsets("g", "t")).toEqual([{ partition: 0, offset: 2, metadata: '{"cut":5}' }]);
    expect(await admin.groupOffsets("other", "t")).toEqual([{ partition: 0, offset: -1, metadata: null }]);
    await p.send([{ topic: "t", messages: [{ key: "k", value: "d" }] }]);
    const second = collector(t, "g");
    await second.c.run(["t"], second.handlers);
    await until(() => second.seen.length === 2);
    expect(values(second.seen)).toEqual(["c", "d"]);
    await second.c.stop();

    const late = collector(t, "fresh", { fromBeginning: false });
    await late.c.run(["t"], late.handlers);
    await p.send([{ topic: "t", messages: [{ key: "k", value: "e" }] }]);
    await until(() => late.seen.length === 1);
    expect(values(late.seen)).toEqual(["e"]);
    await late.c.stop();
  });

  it("re-delivers unmarked records after a handler throws, and only those", async () => {
    const t = await setup({ t: 1 });
    const p = await t.producer();
    await p.send([{ topic: "t", messages: ["a", "b", "c", "d"].map((v) => ({ key: "k", value: v })) }]);
    const seen: string[] = [];
    let failed = false;
    const c = t.consumer({ groupId: "g" });
    await c.run(["t"], {
      eachBatch: async (b, ctx) => {
        for (const r of b.records) {
          if (r.value?.toString() === "c" && !failed) {
            failed = true;
            throw new Error("transient");
          }
          seen.push(r.value!.toString());
          ctx.markProcessed(r.offset);
        }
      },
    });
    await until(() => seen.length === 4);
    await c.stop();
    expect(seen).toEqual(["a", "b", "c", "d"]);
    expect(c.positions().get(tpKey("t", 0))).toBe(4);
  });

  it("bounds a batch by maxBytesPerPartition (at least one record)", async () => {
    const t = await setup({ t: 1 });
    const p = await t.producer();
    await p.send([
      { topic: "t", messages: Array.from({ length: 10 }, () => ({ key: "k", value: "x".repeat(100) })) },
    ]);
    const sizes: number[] = [];
    const c = t.consumer({ groupId: "g", maxBytesPerPartition: 400 });
    await c.run(["t"], {
      eachBatch: async (b, ctx) => {
        sizes.push(b.records.length);
        ctx.markProcessed(b.records.at(-1)!.offset);
      },
    });
    await until(() => sizes.reduce((a, b) => a + b, 0) === 10);
    await c.stop();
    expect(Math.max(...sizes)).toBeLessThanOrEqual(2);
  });
});

describe("MemoryTransport: transactions", () => {
  it("hides open transactions from read_committed readers, shows them on commit with the offsets", async () => {
    const t = await setup({ in: 1, out: 2 });
    const tp = await t.transactionalProducer("tx-1");
    const tx = await tp.begin();
    await tx.send([
      {
        topic: "out",
        messages: [
          { key: "a", value: "1" },
          { key: "b", value: "2" },
        ],
      },
    ]);
    await tx.sendOffsets("proc", [{ topic: "in", partition: 0, offset: 7, metadata: "m" }]);
    // A plain record after the open transaction in the same partition waits behind it (last stable offset).
    const plain = await t.producer();
    await plain.send([{ topic: "out", messages: [{ key: "a", value: "plain" }] }]);

    const committed = collector(t, "rc");
    const dirty = collector(t, "ru", { readUncommitted: true });
    await committed.c.run(["out"], committed.handlers);
    await dirty.c.run(["out"], dirty.handlers);
    await until(() => dirty.seen.length === 3);
    await new Promise((r) => setTimeout(r, 100));
    expect(committed.seen).toHaveLength(0);
    const admin = await t.admin();
    expect((await admin.groupOffsets("proc", "in"))[0]!.offset).toBe(-1);

    await tx.commit();
    await until(() => committed.seen.length === 3);
    expect(values(committed.seen).sort()).toEqual(["1", "2", "plain"]);
    expect(await admin.groupOffsets("proc", "in")).toEqual([{ partition: 0, offset: 7, metadata: "m" }]);
    // The commit marker takes an offset: the high watermark is past it, and readers' positions reach it.
    const highs = await admin.topicOffsets("out");
    const pa = partitionForKey("a", 2);
    const inPa = ["a", "b"].filter((k) => partitionForKey(k, 2) === pa).length + 1; // + "plain"
    expect(highs[pa]!.high).toBe(inPa + 1); // + the commit marker
    await until(() => committed.c.positions().get(tpKey("out", pa)) === inPa + 1);
    await committed.c.stop();
    await dirty.c.stop();
  });

  it("never delivers aborted records to read_committed readers; positions step over them", async () => {
    const t = await setup({ out: 1 });
    const tp = await t.transactionalProducer("tx-1");
    const tx = await tp.begin();
    await tx.send([{ topic: "out", messages: [{ key: "a", value: "aborted" }] }]);
    await tx.sendOffsets("proc", [{ topic: "out", partition: 0, offset: 1 }]);
    await tx.abort();
    const tx2 = await tp.begin();
    await tx2.send([{ topic: "out", messages: [{ key: "a", value: "kept" }] }]);
    await tx2.commit();
    const r = collector(t, "rc");
    await r.c.run(["out"], r.handlers);
    await until(() => r.c.positions().get(tpKey("out", 0)) === 4);
    expect(values(r.seen)).toEqual(["kept"]);
    expect(r.seen[0]!.offset).toBe(2);
    const admin = await t.admin();
    expect((await admin.groupOffsets("proc", "out"))[0]!.offset).toBe(-1);
    await r.c.stop();
    // readToEnd (used to rebuild state) finishes although the log ends with markers.
    const got: string[] = [];
    await readAll(t, admin, "out", (x) => got.push(x.value!.toString()));
    expect(got).toEqual(["kept"]);
  });

  it("fences an older producer with the same transactional id", async () => {
    const t = await setup({ out: 1 });
    const old = await t.transactionalProducer("tx-1");
    const oldTx = await old.begin();
    await oldTx.send([{ topic: "out", messages: [{ key: "a", value: "zombie" }] }]);
    const fresh = await t.transactionalProducer("tx-1");
    await expect(oldTx.commit()).rejects.toThrow(/fenced/);
    await expect(old.begin()).rejects.toThrow(/fenced/);
    const tx = await fresh.begin();
    await tx.send([{ topic: "out", messages: [{ key: "a", value: "new" }] }]);
    await tx.commit();
    const r = collector(t, "rc");
    await r.c.run(["out"], r.handlers);
    await until(() => r.seen.length === 1);
    await new Promise((res) => setTimeout(res, 50));
    expect(values(r.seen)).toEqual(["new"]);
    await r.c.stop();
  });

  it("refuses a second open transaction and use after commit", async () => {
    const t = await setup({ out: 1 });
    const p = await t.transactionalProducer("tx-1");
    const tx = await p.begin();
    await expect(p.begin()).rejects.toThrow(/already open/);
    await tx.commit();
    await expect(tx.send([{ topic: "out", messages: [{ key: "a", value: "x" }] }])).rejects.toThrow(
      /committed/,
    );
  });
});

describe("MemoryTransport: consumer groups", () => {
  it("splits partitions among members, rebalances on join and leave, and loses or doubles nothing when offsets are committed", async () => {
    const t = await setup({ t: 6 });
    const p = await t.producer();
    const send = (n: number, from: number) => sendNumbered(p, "t", from, n);
    await send(300, 0);
    const a = collector(t, "g");
    await a.c.run(["t"], a.handlers);
    expect(a.assignments.at(-1)!.assigned).toHaveLength(6);
    const b = collector(t, "g");
    await b.c.run(["t"], b.handlers);
    const assignedA = a.assignments.at(-1)!.assigned;
    const assignedB = b.assignments.at(-1)!.assigned;
    expect(assignedA).toHaveLength(3);
    expect(assignedB).toHaveLength(3);
    expect(new Set([...assignedA, ...assignedB].map((x) => x.partition)).size).toBe(6);
    expect(a.assignments.at(-1)!.revoked).toHaveLength(3);
    await send(300, 300);
    await until(() => new Set([...a.seen, ...b.seen].map((r) => r.value!.toString())).size === 600);
    await a.c.stop();
    await until(() => b.assignments.at(-1)!.assigned.length === 6);
    await send(100, 600);
    await until(() => new Set([...a.seen, ...b.seen].map((r) => r.value!.toString())).size === 700);
    await b.c.stop();
    const all = [...a.seen, ...b.seen].map((r) => `${r.partition}/${r.offset}`);
    // Each batch is committed before it is marked, so a rebalance re-delivers nothing.
    expect(all.length).toBe(new Set(all).size);
  });

  it("co-partitioned groups give partition p of every topic to the same member", async () => {
    const t = await setup({ bids: 4, auctions: 4 });
    const a = collector(t, "g", { coPartitioned: true });
    const b = collector(t, "g", { coPartitioned: true });
    await a.c.run(["bids", "auctions"], a.handlers);
    await b.c.run(["bids", "auctions"], b.handlers);
    await until(() => a.assignments.at(-1)!.assigned.length === 4);
    for (const x of [a, b]) {
      const asg = x.assignments.at(-1)!.assigned;
      const bids = asg
        .filter((tp) => tp.topic === "bids")
        .map((tp) => tp.partition)
        .sort();
      const auctions = asg
        .filter((tp) => tp.topic === "auctions")
        .map((tp) => tp.partition)
        .sort();
      expect(bids).toEqual(auctions);
      expect(bids).toHaveLength(2);
    }
    await a.c.stop();
    await b.c.stop();
  });

  it("waits for the assignment callback before delivering, and a grown topic rebalances the group", async () => {
    const t = await setup({ t: 1 });
    const p = await t.producer();
    await p.send([{ topic: "t", messages: [{ key: "k", value: "v" }] }]);
    let restored = false;
    let deliveredBeforeRestore = false;
    const seen: KafkaRecord[] = [];
    const c = t.consumer({ groupId: "g" });
    await c.run(["t"], {
      onAssignment: async () => {
        await new Promise((r) => setTimeout(r, 50));
        restored = true;
      },
      eachBatch: async (b, ctx) => {
        if (!restored) deliveredBeforeRestore = true;
        seen.push(...b.records);
        ctx.markProcessed(b.records.at(-1)!.offset);
        await c.commit([{ topic: b.topic, partition: b.partition, offset: b.records.at(-1)!.offset + 1 }]);
      },
    });
    await until(() => seen.length === 1);
    expect(deliveredBeforeRestore).toBe(false);
    const admin = await t.admin();
    await admin.createPartitions("t", 3);
    await expect(admin.createPartitions("t", 2)).rejects.toThrow(/can only grow/);
    expect((await admin.describeTopics(["t", "missing"])).get("t")).toEqual({ name: "t", partitions: 3 });
    expect((await admin.describeTopics(["missing"])).size).toBe(0);
    await p.send([{ topic: "t", messages: [{ key: null, value: "p2", partition: 2 }] }]);
    await until(() => seen.length === 2);
    expect(seen[1]!.partition).toBe(2);
    await c.stop();
  });

  it("rejects subscribing to a topic that does not exist", async () => {
    const t = await setup({});
    await expect(
      t.consumer({ groupId: "g" }).run(["missing"], { eachBatch: async () => {} }),
    ).rejects.toThrow(/does not host topic missing/);
  });

  it("a crashed group's members stop for good: the in-flight batch finishes, failure() says why, nothing more comes", async () => {
    const t = await setup({ t: 1 });
    const p = await t.producer();
    await p.send([{ topic: "t", messages: [{ key: null, value: "first" }] }]);
    let release: () => void = () => undefined;
    const { c, seen, handlers } = collector(t, "g");
    const inFlight = new Promise<void>((r) => {
      release = r;
    });
    await c.run(["t"], {
      ...handlers,
      eachBatch: async (b, ctx) => {
        await inFlight;
        await handlers.eachBatch(b, ctx);
      },
    });
    expect(c.failure()).toBeUndefined();
    const crash = new Error("Not authorized to access group: g");
    t.broker.crashGroup("g", crash);
    expect(c.failure()).toBe(crash);
    release();
    await until(() => seen.length === 1);
    await p.send([{ topic: "t", messages: [{ key: null, value: "second" }] }]);
    await new Promise((r) => setTimeout(r, 100));
    expect(values(seen)).toEqual(["first"]);
    await c.stop();
  });
});

describe("MemoryTransport: compacted topics", () => {
  it("keeps the latest committed value per key for a reader from the beginning", async () => {
    const t = await setup({ prices: 2, plain: 1 }, { prices: { "cleanup.policy": "compact" } });
    const p = await t.producer();
    for (let i = 0; i < 20; i++)
      await p.send([{ topic: "prices", messages: [{ key: `a${i % 3}`, value: `v${i}` }] }]);
    const tp = await t.transactionalProducer("x");
    const tx = await tp.begin();
    await tx.send([{ topic: "prices", messages: [{ key: "a0", value: "aborted" }] }]);
    await tx.abort();
    expect(t.broker.compact("prices")).toBe(17 + 1);
    expect(t.broker.compact("plain")).toBe(0);
    const admin = await t.admin();
    const latest = new Map<string, string>();
    const { records } = await readAll(t, admin, "prices", (r) => latest.set(r.key!, r.value!.toString()));
    expect(records).toBe(3);
    expect(Object.fromEntries(latest)).toEqual({ a0: "v18", a1: "v19", a2: "v17" });
    // Offsets are kept (compaction leaves gaps, never renumbers).
    expect((await admin.topicOffsets("prices")).reduce((n, o) => n + o.high, 0)).toBe(22);
  });

  it("compacts automatically as the log grows", async () => {
    const t = new MemoryTransport(new MemoryBroker({ logger, compactEvery: 10 }));
    const admin = await t.admin();
    await admin.createTopics([{ name: "c", partitions: 1, configs: { "cleanup.policy": "compact" } }]);
    const p = await t.producer();
    for (let i = 0; i < 25; i++) await p.send([{ topic: "c", messages: [{ key: "k", value: String(i) }] }]);
    const got: string[] = [];
    await readAll(t, admin, "c", (r) => got.push(r.value!.toString()));
    expect(got.at(-1)).toBe("24");
    expect(got.length).toBeLessThan(10);
  });
});

describe("MemoryTransport: read-process-write exactly once across a rebalance", () => {
  it("transactional outputs with their input offsets: no loss, no duplicate when members come and go", async () => {
    const t = await setup({ in: 4, out: 4 });
    const p = await t.producer();
    const produce = (from: number, n: number) => sendNumbered(p, "in", from, n);
    await produce(0, 400);

    /** A bid-processor-shaped member: one transactional producer per owned partition (fencing the previous owner). */
    const member = () => {
      const producers = new Map<number, Awaited<ReturnType<Transport["transactionalProducer"]>>>();
      const c = t.consumer({ groupId: "proc" });
      const started = c.run(["in"], {
        onAssignment: async (assigned) => {
          for (const [part, prod] of producers) {
            if (!assigned.some((a) => a.partition === part)) {
              await prod.close();
              producers.delete(part);
            }
          }
          for (const a of assigned)
            if (!producers.has(a.partition))
              producers.set(a.partition, await t.transactionalProducer(`proc-${a.partition}`));
        },
        eachBatch: async (b, ctx) => {
          const prod = producers.get(b.partition)!;
          const tx = await prod.begin();
          await tx.send([
            {
              topic: "out",
              messages: b.records.map((r) => ({ key: r.key, value: r.value, partition: b.partition })),
            },
          ]);
          const last = b.records.at(-1)!.offset;
          await tx.sendOffsets("proc", [{ topic: "in", partition: b.partition, offset: last + 1 }]);
          await tx.commit();
          ctx.markProcessed(last);
        },
      });
      return { c, started };
    };

    const a = member();
    await a.started;
    const b = member();
    await b.started;
    await produce(400, 200);
    await a.c.stop();
    await produce(600, 200);
    const reader = collector(t, "check", { commit: false });
    await reader.c.run(["out"], reader.handlers);
    await until(() => reader.seen.length >= 800);
    await new Promise((r) => setTimeout(r, 200));
    await b.c.stop();
    await reader.c.stop();
    const got = values(reader.seen);
    expect(got).toHaveLength(800);
    expect(new Set(got).size).toBe(800);
    const admin = await t.admin();
    const committed = await admin.groupOffsets("proc", "in");
    const highs = await admin.topicOffsets("in");
    expect(committed.map((c) => c.offset)).toEqual(highs.map((h) => h.high));
  });
});

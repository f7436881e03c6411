/**
 * Issue #12 (part 2): one bid record never decided after a busy CI run.
 *
 * A bid held for an unknown auction lives only in the book and in the
 * committed offset's metadata (`h`, replayed through `replayHeld`). The
 * consumer's in-memory position moves past it (`markProcessed(bidsNext - 1)`).
 * When a transaction fails (an idle-tick close under load, or a batch's
 * commit), the partition is rebuilt from the committed state WITHOUT a
 * rebalance: the new book has no held bids, `replayHeld` names the held
 * offset, but the consumer keeps fetching from its in-memory position, after
 * the held bid. The held bid is never fetched again, so it is never decided
 * (and the committed offset stays pinned on it forever).
 *
 * The in-memory transport behaves like kafkajs here (a throwing batch handler
 * or a failed tick does not seek the consumer back to the committed offset),
 * so this reproduces the loss deterministically. Both tests fail until the
 * bid-processor re-reads held offsets after a rebuild that no rebalance
 * accompanied (see the report of issue #12).
 */
import { afterEach, describe, expect, it } from "vitest";
import { allTopics, topicNames } from "../../api/v1alpha1/pipeline.ts";
import { createLogger } from "../../lib/log.ts";
import { embeddedPipeline } from "../../test/embedded-pipeline.ts";
import { lampAuction, lampBid } from "../../test/lamp-auction.ts";
import { MemoryBroker, MemoryTransport } from "../kafka/memory.ts";
import { readToEnd } from "../kafka/read.ts";
import { applyTopics } from "../kafka/topics.ts";
import type {
  Admin,
  KafkaRecord,
  TopicMessages,
  Transaction,
  TransactionalProducer,
  Transport,
} from "../kafka/transport.ts";
import { Registry } from "../runtime/metrics.ts";
import { BidProcessor } from "./processor.ts";

const pipeline = embeddedPipeline("heldrebuild", 1);
const topics = topicNames(pipeline);

/** A transport whose next transaction matching `failWhen` fails at commit (then is aborted by the caller). */
class FlakyTransport implements Transport {
  readonly inner: MemoryTransport;
  failWhen: ((sent: readonly TopicMessages[]) => boolean) | undefined;
  failures = 0;
  constructor(inner: MemoryTransport) {
    this.inner = inner;
  }
  producer() {
    return this.inner.producer();
  }
  consumer(o: Parameters<Transport["consumer"]>[0]) {
    return this.inner.consumer(o);
  }
  /** The next rebuild's read of committed offsets takes this long (a busy broker): batches fetched meanwhile wait. */
  slowGroupOffsetsMs = 0;
  async admin(): Promise<Admin> {
    const a = await this.inner.admin();
    return {
      describeTopics: (n) => a.describeTopics(n),
      createTopics: (s) => a.createTopics(s),
      createPartitions: (n, k) => a.createPartitions(n, k),
      deleteTopics: (n) => a.deleteTopics(n),
      topicOffsets: (n) => a.topicOffsets(n),
      groupOffsets: async (g, t) => {
        const ms = this.slowGroupOffsetsMs;
        if (ms > 0 && this.failures > 0) {
          this.slowGroupOffsetsMs = 0;
          await new Promise((r) => setTimeout(r, ms));
        }
        return a.groupOffsets(g, t);
      },
      brokerCount: () => a.brokerCount(),
      close: () => a.close(),
    };
  }
  async transactionalProducer(id: string): Promise<TransactionalProducer> {
    const p = await this.inner.transactionalProducer(id);
    return {
      begin: async (): Promise<Transaction> => {
        const tx = await p.begin();
        const sent: TopicMessages[] = [];
        return {
          send: async (b) => {
            sent.push(...b);
            await tx.send(b);
          },
          sendOffsets: (g, o) => tx.sendOffsets(g, o),
          commit: async () => {
            if (this.failWhen?.(sent)) {
              this.failWhen = undefined;
              this.failures++;
              throw new Error("injected: transaction commit failed (coordinator timeout under load)");
            }
            await tx.commit();
          },
          abort: () => tx.abort(),
        };
      },
      close: () => p.close(),
    };
  }
}

/** The lamp auction `id`, started a minute ago. */
const auction = (id: string, endsMs: number) => lampAuction(id, Date.now() - 60_000, endsMs);
const bid = (id: string, auctionId: string, amount: number) =>
  lampBid({ bid_id: id, auction_id: auctionId, amount });

type Producer = Awaited<ReturnType<Transport["producer"]>>;

/** Produces `values` as JSON records keyed `key`, in one request. */
const send = (producer: Producer, topic: string, key: string, values: readonly object[]) =>
  producer.send([{ topic, messages: values.map((v) => ({ key, value: JSON.stringify(v) })) }]);

/** Committed records of a topic (read_committed, to its end). */
async function readAll(broker: MemoryBroker, topic: string): Promise<KafkaRecord[]> {
  const t = new MemoryTransport(broker);
  const admin = await t.admin();
  const out: KafkaRecord[] = [];
  await readToEnd({
    transport: t,
    admin,
    topic,
    groupPrefix: "held-rebuild-test",
    onRecord: (r) => out.push(r),
  });
  return out;
}

/** bid_id -> "accepted" or the rejection reason, from the committed output topics; a bid decided twice fails. */
async function decidedIds(broker: MemoryBroker): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const topic of [topics["bids.accepted"].name, topics["bids.rejected"].name])
    for (const r of await readAll(broker, topic))
      if (r.value) {
        const v = JSON.parse(r.value.toString()) as { bid_id: string; reason?: string };
        if (out.has(v.bid_id)) throw new Error(`bid ${v.bid_id} decided twice`);
        out.set(v.bid_id, v.reason ?? "accepted");
      }
  return out;
}

async function until(what: string, f: () => Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("bid-processor: a held bid survives a rebuild that no rebalance accompanied (issue #12)", () => {
  let bp: BidProcessor | undefined;
  afterEach(async () => {
    await bp?.close();
    bp = undefined;
  });

  async function start(flaky: FlakyTransport, holdMs = 6_000) {
    const admin = await flaky.admin();
    await applyTopics(
      admin,
      allTopics(pipeline).map((t) => ({ name: t.name, partitions: t.partitions, configs: t.config })),
    );
    bp = new BidProcessor({
      transport: flaky,
      admin,
      pipeline,
      topics,
      logger: createLogger("bid-processor", process.env.LOG_LEVEL ?? "silent"),
      metrics: new Registry(),
      tickMs: 50,
      // Short hold so the test is quick; the close fails while the bid is held.
      book: { pendingMaxAgeMs: holdMs },
    });
    await bp.start();
    return (await flaky.producer()) as Producer;
  }

  /** A fresh in-memory broker, behind a transport whose transactions can be made to fail. */
  const fresh = () => {
    const broker = new MemoryBroker({ logger: createLogger("memory", "silent") });
    return { broker, flaky: new FlakyTransport(new MemoryTransport(broker)) };
  };
  /** The metadata of the bids offset the processor committed (`u`: next unread, `h`: held). */
  const bidsMeta = async (flaky: FlakyTransport) =>
    (await (await flaky.admin()).groupOffsets(bp!.groupId, topics.bids.name))[0]?.metadata ?? "";
  /** Waits for bid `id` to be decided; its decision. */
  const decision = async (broker: MemoryBroker, id: string, ms: number) => {
    await until(`${id} decided`, async () => (await decidedIds(broker)).has(id), ms);
    return (await decidedIds(broker)).get(id);
  };

  it("the idle tick's close transaction fails while a bid is held: the held bid is still decided", async () => {
    const { broker, flaky } = fresh();
    const producer = await start(flaky);
    await send(producer, topics.auctions.name, "a1", [auction("a1", Date.now() + 300)]);
    await send(producer, topics.bids.name, "a1", [
      bid("b-known", "a1", 150),
      // held: its auction never comes; must end auction_not_found after the hold time
      bid("b-ghost", "ghost-1", 150),
    ]);
    // The close of a1 (idle tick, ~2.3 s later + 2 s clock lag) is the transaction that fails.
    flaky.failWhen = (sent) => sent.some((b) => b.topic === topics.transactions.name);
    await decision(broker, "b-known", 10_000);
    await until("the close transaction to fail", async () => flaky.failures > 0, 15_000);
    // a1 is closed again by the rebuilt book ...
    await until(
      "a1 closed",
      async () => (await readAll(broker, topics.transactions.name)).some((r) => r.key === "a1"),
      15_000,
    );
    // ... and the held bid must be decided too (auction_not_found after the 6 s hold).
    expect(await decision(broker, "b-ghost", 20_000)).toBe("auction_not_found");
  }, 60_000);

  it("held bids scattered over more than one fetch, then a restart: every one is read again and decided", async () => {
    // Seen on the local cluster: after a rebuild the consumer starts at the
    // oldest held bid, and the first batch moved it on to bidsNext, past the
    // held bids of later fetch windows (never decided, the clock stopped).
    const { broker, flaky } = fresh();
    const producer = await start(flaky, 8_000);
    await send(producer, topics.auctions.name, "a1", [auction("a1", Date.now() + 3_600_000)]);
    // 3,000 bids (~1 MB, four 256 KiB fetch windows), every 100th for an auction that never comes.
    const bids = Array.from({ length: 3_000 }, (_, i) =>
      i % 100 === 50 ? bid(`b-ghost-${i}`, `ghost-${i}`, 150) : bid(`b-${i}`, "a1", 150 + i),
    );
    for (let i = 0; i < bids.length; i += 500)
      await send(producer, topics.bids.name, "a1", bids.slice(i, i + 500));
    await until(
      "every bid read, the 30 ghosts held",
      async () => (await bidsMeta(flaky)).includes('"u":3000') && (await decidedIds(broker)).size === 2_970,
      20_000,
    );
    // A restart while they are held (graceful: the replacement resumes from the committed state).
    await bp?.close();
    bp = undefined;
    await start(flaky, 8_000);
    await until("all 3,000 decided", async () => (await decidedIds(broker)).size === 3_000, 30_000);
    const d = await decidedIds(broker);
    for (let i = 50; i < 3_000; i += 100)
      expect(d.get(`b-ghost-${i}`), `b-ghost-${i}`).toBe("auction_not_found");
  }, 90_000);

  it("a batch's transaction fails after an earlier batch held a bid: the held bid is still decided", async () => {
    const { broker, flaky } = fresh();
    const producer = await start(flaky);
    await send(producer, topics.auctions.name, "a1", [auction("a1", Date.now() + 3_600_000)]);
    await send(producer, topics.bids.name, "a1", [bid("b-ghost", "ghost-1", 150)]);
    await until("the hold committed", async () => (await bidsMeta(flaky)).includes('"u":1'), 10_000);
    // The next bid's transaction fails once; the batch is retried after a rebuild.
    flaky.failWhen = (sent) => sent.some((b) => b.topic === topics["bids.accepted"].name);
    await send(producer, topics.bids.name, "a1", [bid("b-next", "a1", 150)]);
    await decision(broker, "b-next", 15_000);
    expect(flaky.failures).toBe(1);
    expect(await decision(broker, "b-ghost", 20_000)).toBe("auction_not_found");
  }, 60_000);

  it("a batch fetched again while its partition is rebuilt waits for the held bids before it (CI: bids decided out of order)", async () => {
    // Seen once in CI (processors-outcomes, 48 partitions under load): after
    // a failed transaction the partition was rebuilt and the consumer sought
    // back to the oldest held bid, but the batch already fetched again (the
    // one whose transaction failed) was decided first by the rebuilt book.
    // Its bids then went ahead of the held bids of the same auction: when the
    // auction came, the earlier bids were judged below the later ones
    // (below_minimum) and the winner's sequence and bid count changed.
    const { broker, flaky } = fresh();
    const producer = await start(flaky, 20_000);
    const meta = () => bidsMeta(flaky);
    const sendLate = (ids: number[]) =>
      send(
        producer,
        topics.bids.name,
        "late",
        ids.map((i) => bid(`b-${i}`, "late", 150 + 10 * i)),
      );
    // Three bids for an auction whose record has not come yet: held, and committed as held.
    await sendLate([1, 2, 3]);
    await until("the hold of three bids committed", async () => (await meta()).includes('"u":3'), 10_000);
    // The next batch (three later, higher bids) fails at commit; the rebuild is slow.
    flaky.failWhen = () => true;
    flaky.slowGroupOffsetsMs = 1_000;
    await sendLate([4, 5, 6]);
    await until("the six bids held again, committed", async () => (await meta()).includes('"u":6'), 15_000);
    expect(flaky.failures).toBe(1);
    await send(producer, topics.auctions.name, "late", [auction("late", Date.now() + 3_600_000)]);
    await until("the six bids decided", async () => (await decidedIds(broker)).size === 6, 15_000);
    // In log order each bid outbids the one before: all six accepted.
    const d = await decidedIds(broker);
    expect([1, 2, 3, 4, 5, 6].map((i) => `b-${i}=${d.get(`b-${i}`)}`)).toEqual(
      [1, 2, 3, 4, 5, 6].map((i) => `b-${i}=accepted`),
    );
  }, 60_000);
});

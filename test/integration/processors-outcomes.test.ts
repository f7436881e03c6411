/**
 * Issue #13: auction outcomes must not depend on crashes, lag or speed.
 *
 * Every scenario runs the real processors on the real broker and database
 * against a pipeline with 48 partitions (more than the 8 the bid-processor
 * serves at once), then compares what was committed with the oracle of
 * `outcomes.ts` (the log replayed through pure cores) bid by bid and auction
 * by auction, and keeps the independent count checks of the harness.
 */
import { describe, expect, it } from "vitest";
import type { Producer } from "../../processors/kafka/transport.ts";
import { type Dataset, generateDataset } from "../generate/dataset.ts";
import { expectOracleOutcomes } from "./outcomes.ts";
import {
  assertPipelineResult,
  type Env,
  expectedOutcome,
  kill9,
  readTopic,
  silverCounts,
  transport,
  until,
} from "./processors-harness.ts";
import { scenario, sleep, sleepUntil } from "./processors-scenario.ts";

const PARTITIONS = 48;

function dataset(seed: number, over: Partial<Parameters<typeof generateDataset>[0]> = {}): Dataset {
  return generateDataset({ seed, auctions: 60, bids: 3000, rate: 300, startMs: Date.now() + 4_000, ...over });
}

interface SendOptions {
  /** Auctions whose record is written only this long after their first bid (held bids). */
  readonly lateAuctions?: ReadonlySet<string>;
  readonly lateByMs?: number;
  /** More auction records (updates), each sent at its time. */
  readonly updates?: readonly { readonly at: number; readonly auction: object & { auction_id: string } }[];
  /**
   * Bids of the late auctions are stamped this much before they are sent
   * (a producer that buffered them): they arrive after records stamped later.
   */
  readonly stampEarlyMs?: number;
}

/**
 * Users and auctions first, then every bid at its time. Records are stamped
 * with the time they are sent (as ingest stamps received_at), so a busy test
 * machine delays records without making them older than the log around them.
 */
async function send(env: Env, ds: Dataset, o: SendOptions = {}): Promise<void> {
  const producer: Producer = await transport("outcomes-generator", 25).producer();
  const late = o.lateAuctions ?? new Set<string>();
  try {
    await producer.send([
      {
        topic: env.topics.users.name,
        messages: ds.users.map((u) => ({ key: u.user_id, value: JSON.stringify(u) })),
      },
      {
        topic: env.topics.auctions.name,
        messages: ds.auctions
          .filter((a) => !late.has(a.auction_id))
          .map((a) => ({ key: a.auction_id, value: JSON.stringify(a) })),
      },
    ]);
    type Ev = { at: number; topic: string; key: string; value: string; early?: number };
    const evs: Ev[] = ds.bids.map((b) => ({
      at: b.sendAtMs,
      topic: env.topics.bids.name,
      key: b.key,
      value: b.raw,
      early: late.has(b.key) ? o.stampEarlyMs : undefined,
    }));
    for (const u of o.updates ?? [])
      evs.push({
        at: u.at,
        topic: env.topics.auctions.name,
        key: u.auction.auction_id,
        value: JSON.stringify(u.auction),
      });
    for (const a of ds.auctions) {
      if (!late.has(a.auction_id)) continue;
      const first = ds.bids.find((b) => b.key === a.auction_id)?.sendAtMs ?? ds.startMs;
      evs.push({
        at: first + (o.lateByMs ?? 3_000),
        topic: env.topics.auctions.name,
        key: a.auction_id,
        value: JSON.stringify(a),
      });
    }
    evs.sort((x, y) => x.at - y.at);
    for (let i = 0; i < evs.length; ) {
      const wait = (evs[i]?.at ?? 0) - Date.now();
      if (wait > 0) await sleep(Math.min(wait, 50));
      const now = Date.now();
      const byTopic = new Map<string, { key: string; value: string; timestamp: number }[]>();
      while (
        i < evs.length &&
        (evs[i]?.at ?? 0) <= now &&
        byTopic.size < 2 &&
        (byTopic.get(evs[i]!.topic)?.length ?? 0) < 500
      ) {
        const e = evs[i++]!;
        const list = byTopic.get(e.topic) ?? [];
        list.push({ key: e.key, value: e.value, timestamp: Date.now() - (e.early ?? 0) });
        byTopic.set(e.topic, list);
      }
      if (byTopic.size > 0)
        await producer.send([...byTopic].map(([topic, messages]) => ({ topic, messages })));
    }
  } finally {
    await producer.close();
  }
}

/**
 * Waits for the pipeline's independent checks, then compares the committed
 * outcomes with the oracle. `counts: false`: the dataset's own expectation
 * does not apply (auction records were changed), so only every bid once and
 * every auction closed once are checked before the comparison.
 */
async function assertSameOutcomes(env: Env, ds: Dataset, o: { counts?: boolean } = {}): Promise<void> {
  if (o.counts === false) {
    await until("silver to hold every bid record and every auction's transaction", async () => {
      const c = await silverCounts(env);
      return c.bids + c.rejections >= ds.bids.length && c.transactions >= ds.auctions.length;
    });
    const c = await silverCounts(env);
    expect(c.bids + c.rejections).toBe(ds.bids.length);
    expect(c.transactions).toBe(ds.auctions.length);
    await expectOracleOutcomes(env, ds.bids.length + ds.auctions.length);
    return;
  }
  const exp = expectedOutcome(ds);
  try {
    await assertPipelineResult(env, ds, exp);
  } catch (err) {
    const got = await env.pool.query<{ reason: string; n: number }>(
      "SELECT reason, count(*)::int AS n FROM silver.bid_rejections GROUP BY reason ORDER BY reason",
    );
    const sample = await env.pool.query<{ reason: string; detail: string }>(
      "SELECT reason, detail FROM silver.bid_rejections WHERE reason IN ('auction_closed','auction_not_found') LIMIT 5",
    );
    process.stderr.write(
      `[outcomes] expected ${exp.accepted.size} accepted, rejections ${JSON.stringify(exp.byReason)}; silver rejections ${JSON.stringify(got.rows)} e.g. ${JSON.stringify(sample.rows)}\n`,
    );
    // The dataset's expectation assumes records logged on schedule; a sender
    // slowed by a loaded machine logs them late. Whether the run still agrees
    // with the log (the oracle) tells a slow sender from a wrong decision.
    const late = await lateSends(env, ds);
    const agrees = await expectOracleOutcomes(env, 0).then(
      () => "agree",
      () => "DIFFER",
    );
    process.stderr.write(
      `[outcomes] ${late} bid records were logged more than 2 s after their schedule; the run and the oracle ${agrees}\n`,
    );
    // Seen in a CI rehearsal: 2,212 and 2,466 of 3,000 bids logged late (the
    // sender retried "not the leader" on the freshly created topics). The
    // counts then say how late the sender was, not how the processors
    // decided. What still must hold: every bid decided once (below) and
    // every outcome equal to the log's replay.
    if (late === 0 || agrees !== "agree") throw err;
    process.stderr.write(
      "[outcomes] the dataset's counts do not apply to a late sender; checking every bid once\n",
    );
    const c = await silverCounts(env);
    expect(c.bids + c.rejections, "every bid record in silver once").toBe(ds.bids.length);
    expect(c.transactions, "every auction closed once").toBe(ds.auctions.length);
  }
  await expectOracleOutcomes(env, ds.bids.length + ds.auctions.length);
}

/** Bid records whose log time is more than 2 s after the time the dataset scheduled them. */
async function lateSends(env: Env, ds: Dataset): Promise<number> {
  const at = new Map(ds.bids.map((b) => [b.raw, b.sendAtMs]));
  let n = 0;
  for (const r of await readTopic(env, env.topics.bids.name)) {
    const planned = at.get(r.value?.toString("utf8") ?? "");
    if (planned !== undefined && r.timestamp - planned > 2_000) n++;
  }
  return n;
}

/** Milliseconds from `since` until the outputs of the bid-processor grow again (the recovery stall). */
async function stallAfter(env: Env, since: number): Promise<number> {
  const count = async () =>
    (await env.admin.topicOffsets(env.topics["bids.accepted"].name)).reduce((n, p) => n + p.high, 0) +
    (await env.admin.topicOffsets(env.topics["bids.rejected"].name)).reduce((n, p) => n + p.high, 0);
  const start = await count();
  for (let i = 0; i < 1200; i++) {
    if ((await count()) > start) return Date.now() - since;
    await sleep(100);
  }
  return Number.NaN;
}

describe("auction outcomes do not depend on crashes, lag or speed (48 partitions)", () => {
  const sc = scenario();

  it("kill -9 mid-stream with a backlog on more partitions than are served at once, then restart", async () => {
    const e = await sc.setup("oc-kill", PARTITIONS);
    const ds = dataset(21);
    await sc.start(e, "silver-writer", "bronze-archiver");
    const bp = sc.spawn(e, "bid-processor");
    const sending = send(e, ds);
    await sleepUntil(ds.startMs + ds.durationMs * 0.4);
    await kill9(bp);
    const killedAt = Date.now();
    // A backlog builds while the group waits for the dead member's session to end.
    sc.spawn(e, "bid-processor");
    const stall = await stallAfter(e, killedAt);
    process.stderr.write(`[outcomes] kill -9: outputs resumed ${stall} ms after the kill\n`);
    await sending;
    await assertSameOutcomes(e, ds);
  }, 400_000);

  it("a bid-processor started 60 s late on a backlog in which auctions have ended", async () => {
    const e = await sc.setup("oc-late", PARTITIONS);
    const ds = dataset(22, { bids: 2000, rate: 400 });
    await sc.start(e, "silver-writer", "bronze-archiver");
    await send(e, ds);
    const ended = ds.auctions.filter((a) => Date.parse(a.ends_at) < Date.now()).length;
    expect(ended, "some auctions ended before the bid-processor started").toBeGreaterThan(0);
    await sleepUntil(ds.startMs + 60_000);
    await sc.start(e, "bid-processor:late");
    await assertSameOutcomes(e, ds);
  }, 400_000);

  it("two replicas with forced rebalances (a second joins, the first leaves, a third joins)", async () => {
    const e = await sc.setup("oc-rebalance", PARTITIONS);
    const ds = dataset(23);
    await sc.start(e, "silver-writer", "bronze-archiver");
    const [first] = await sc.start(e, "bid-processor:bp-1");
    const sending = send(e, ds);
    const at = (f: number) => sleepUntil(ds.startMs + ds.durationMs * f);
    await at(0.25);
    await sc.start(e, "bid-processor:bp-2");
    await at(0.5);
    await sc.stop(first);
    await at(0.7);
    await sc.start(e, "bid-processor:bp-3");
    await sending;
    await assertSameOutcomes(e, ds);
  }, 400_000);

  it("anti-sniping extensions that fall inside a crash window", async () => {
    const e = await sc.setup("oc-snipe", PARTITIONS);
    // Many snipes: bids in the last seconds of auctions with a soft close.
    const ds = dataset(24, { fractions: { snipe: 0.3 } });
    const ends = ds.auctions
      .filter((a) => (a.soft_close_seconds ?? 0) > 0)
      .map((a) => Date.parse(a.ends_at))
      .filter((t) => t > ds.startMs + 2_000 && t < ds.startMs + ds.durationMs - 2_000)
      .sort((a, b) => a - b);
    expect(ends.length, "auctions with a soft close end while bids flow").toBeGreaterThan(0);
    const crashAt = ends[Math.floor(ends.length / 2)]! - 1_000;
    await sc.start(e, "silver-writer", "bronze-archiver");
    const bp = sc.spawn(e, "bid-processor");
    const sending = send(e, ds);
    await sleepUntil(crashAt);
    await sc.respawn(e, bp, "bid-processor");
    await sending;
    await assertSameOutcomes(e, ds);
    const accepted = await readTopic(e, e.topics["bids.accepted"].name);
    const extended = accepted.filter(
      (r) => (JSON.parse(r.value?.toString() ?? "{}") as { extended?: boolean }).extended,
    );
    expect(extended.length, "anti-sniping extended some auctions").toBeGreaterThan(0);
  }, 400_000);

  it("bids held for auction records that arrive late, with a crash while they are held", async () => {
    const e = await sc.setup("oc-held", PARTITIONS);
    const ds = dataset(25);
    const late = new Set(ds.auctions.filter((_, i) => i % 4 === 0).map((a) => a.auction_id));
    await sc.start(e, "silver-writer", "bronze-archiver");
    const bp = sc.spawn(e, "bid-processor");
    const sending = send(e, ds, { lateAuctions: late, lateByMs: 3_000 });
    await sleepUntil(ds.startMs + 2_000);
    await sc.respawn(e, bp, "bid-processor");
    await sending;
    await assertSameOutcomes(e, ds);
  }, 400_000);

  it("auction updates read ahead of a backlog, and late-stamped bids held across a crash", async () => {
    const e = await sc.setup("oc-update", PARTITIONS);
    const ds = dataset(26, { rate: 150 });
    const killAt = ds.startMs + ds.durationMs * 0.3;
    // Every 4th auction's record comes 9 s after its first bid, and its bids
    // are stamped 1.5 s before they are sent: held bids that arrived after
    // their own timestamp (kept in the offset metadata's arrivals), whose
    // hold (10 s) would end before their auction came if a restart took
    // their timestamp for their arrival. (Stamped more than the idle clock's
    // 2 s lag early, a bid may be judged by a clock already past it:
    // docs/events.md "Time".)
    const late = new Set(ds.auctions.filter((_, i) => i % 4 === 0).map((a) => a.auction_id));
    // Every 3rd of the others still open then is updated while the
    // bid-processor is down (a later end, a larger increment): read ahead of
    // the bids backlog after the restart. (Live, an update takes effect when
    // it is read: docs/events.md "Time".)
    const updates = ds.auctions
      .filter((a, i) => i % 3 === 1 && !late.has(a.auction_id))
      .map((a, k) => ({ a, at: killAt + 1_000 + (k % 6) * 400 }))
      .filter(({ a, at }) => Date.parse(a.ends_at) > at + 1_000)
      .map(({ a, at }) => ({
        at,
        auction: {
          ...a,
          ends_at: new Date(Date.parse(a.ends_at) + 20_000).toISOString(),
          min_increment: a.min_increment * 3,
        },
      }));
    expect(updates.length, "auctions updated while the bid-processor is down").toBeGreaterThan(3);
    await sc.start(e, "silver-writer", "bronze-archiver");
    const bp = sc.spawn(e, "bid-processor");
    const sending = send(e, ds, { lateAuctions: late, lateByMs: 9_000, updates, stampEarlyMs: 1_500 });
    await sleepUntil(killAt);
    // The committed offsets name held bids with their arrival at the kill.
    const meta = (await e.admin.groupOffsets(`${e.name}.bid-processor`, e.topics.bids.name))
      .map((c) => c.metadata ?? "")
      .join(" ");
    await sc.respawn(e, bp, "bid-processor");
    await sending;
    await assertSameOutcomes(e, ds, { counts: false });
    expect(meta, "held late-stamped bids were recorded with their arrival before the kill").toMatch(/"a":"/);
    // The updates took effect: each updated auction closed at its new end (or later, extended).
    const closed = new Map(
      (await readTopic(e, e.topics.transactions.name)).map((r) => {
        const t = JSON.parse(r.value?.toString() ?? "{}") as { auction_id: string; closed_at: string };
        return [t.auction_id, Date.parse(t.closed_at)];
      }),
    );
    for (const u of updates)
      expect(closed.get(u.auction.auction_id), u.auction.auction_id).toBeGreaterThanOrEqual(
        Date.parse(u.auction.ends_at),
      );
  }, 400_000);
});

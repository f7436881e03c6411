/**
 * A partition the bid-processor owns, and what it commits: the input
 * offsets of its transaction, with the held bids and waiting auction
 * updates in their metadata (held-meta.ts), so a restart decides them again.
 */
import type { BidProcessorCore } from "../domain/bid-core.ts";
import type { TopicPartitionOffset, TransactionalProducer } from "../kafka/transport.ts";
import type { Counter, Gauge } from "../runtime/metrics.ts";
import { encodeHeldMeta, fits } from "./held-meta.ts";
import type { Outputs } from "./outputs.ts";

/** Where a held bid sits in its input partition (the `ref` given to the core). */
export interface Ref {
  readonly p: number;
  readonly offset: number;
  /** The record's timestamp (a held bid's arrival is kept only when it differs). */
  readonly ts: number;
}

/** A partition this replica owns: its book, clock, transactional producer and where reading resumes. */
export interface Part {
  readonly p: number;
  /** This partition's state machine (auctions of one partition have one owner and one book). */
  core: BidProcessorCore;
  /**
   * The partition's clock (docs/events.md "Time"): the largest bids-record
   * timestamp processed or, once the log end of the partition's bids was
   * verified reached (`#tick`), the wall clock minus IDLE_CLOCK_LAG_MS.
   * Closing follows it, so a replay after a crash, a late start on a backlog
   * or a rebalance decides the same way as the first run. The auctions
   * topic's own clock is `core.auctionsClockMs` (hold expiry).
   */
  clock: number;
  /** Wall-clock time of the last batch or rebuild. */
  lastActivity: number;
  /** Next decision sequence number (SEQ_HEADER). */
  seq: number;
  /** A backlog of bids waits for the auctions topic to be read up to their time (`BidProcessor.sink`). */
  waitingForAuctions: boolean;
  producer?: TransactionalProducer;
  /** Resolves when the partition's state is rebuilt; batches wait for it. */
  ready: Promise<void>;
  restoring: boolean;
  /** False from the start of a rebuild until it succeeded: a half-built book must decide nothing. */
  valid: boolean;
  /** Bumped whenever in-memory state is discarded; queued work of an older epoch is dropped. */
  epoch: number;
  lock: Promise<void>;
  /** Next bid offset not yet processed (records below it were decided or are held). */
  bidsNext?: number;
  auctionsNext?: number;
  /** Held offsets below bidsNext read from the committed metadata: they must be decided again. */
  replayHeld: Set<number>;
  /** Arrival of replayHeld offsets that arrived after their own timestamp (the committed metadata's `a`). */
  replayArrival: Map<number, number>;
  /** Auction updates below auctionsNext that waited for the bids' clock at the last commit: applied again. */
  replayQueued: Set<number>;
  /** The clock at bidsNext read from the committed metadata (`c`): the least clock to commit while replaying below it. */
  resumeClock?: number;
  /** Offsets of the last commit, to skip empty transactions. */
  lastOffsets?: string;
  /** Committed offsets read by the last rebuild (-1: none): where a rebuild without a rebalance rewinds the consumer to. */
  committed?: { bids: number; auctions: number };
}

/** A new partition's state: nothing read, nothing valid until its first rebuild. */
export function newPart(p: number, core: BidProcessorCore, now: number): Part {
  return {
    p,
    core,
    clock: 0,
    lastActivity: now,
    seq: 0,
    waitingForAuctions: false,
    ready: Promise.resolve(),
    restoring: false,
    valid: false,
    epoch: 0,
    lock: Promise.resolve(),
    replayHeld: new Set(),
    replayArrival: new Map(),
    replayQueued: new Set(),
  };
}

/** What a partition's committed offsets are computed with: the input topics and the hold's instruments. */
export interface PartitionCommits {
  readonly bids: string;
  readonly auctions: string;
  /** Bids held per partition. */
  readonly held: Gauge;
  /** Held bids rejected early for want of room in the metadata, per partition. */
  readonly evicted: Counter;
}

/**
 * `partitionOffsets`, after making room: when the held offsets do not fit Kafka's
 * offset metadata limit (a scattered hold thousands of bids long), the
 * oldest held bids are rejected auction_not_found now, their rejections
 * appended to `outputs` (same transaction), until the rest fits.
 */
export function offsetsFitting(st: Part, outputs: Outputs, c: PartitionCommits): TopicPartitionOffset[] {
  for (;;) {
    const offsets = partitionOffsets(st, c);
    const auctionsMeta = offsets.find((o) => o.topic === c.auctions)?.metadata ?? "";
    if (!fits(auctionsMeta)) {
      // Too many auction updates waiting to record: the oldest take effect now.
      const flushed = st.core.flushQueued(Math.max(1, Math.ceil(st.core.queuedRefs().length / 10)));
      if (flushed.length > 0 || st.core.queuedRefs().length > 0) {
        outputs.push(flushed);
        continue;
      }
    }
    const meta = offsets.find((o) => o.topic === c.bids)?.metadata ?? "";
    if (fits(meta)) return offsets;
    const held = st.core.heldRefs().length;
    const evicted = st.core.evictHeld(
      Math.max(1, Math.ceil(held / 10)),
      st.clock,
      "too many bids held at once to record in the committed offset",
    );
    // Nothing left to evict: only bids replayed from a committed record remain (it fitted then).
    if (evicted.length === 0) return offsets;
    outputs.push(evicted);
    c.evicted.inc({ partition: String(st.p) }, evicted.length);
  }
}

/** Offsets to commit for partition p: bids up to the oldest held bid (with metadata), auctions as processed. */
function partitionOffsets(st: Part, c: PartitionCommits): TopicPartitionOffset[] {
  const out: TopicPartitionOffset[] = [];
  if (st.bidsNext !== undefined) {
    const held = new Set<number>(st.replayHeld);
    const arrivals = new Map(st.replayArrival);
    for (const { ref, arrivedAtMs } of st.core.heldArrivals()) {
      const r = ref as Ref | undefined;
      if (!r || r.p !== st.p) continue;
      held.add(r.offset);
      if (arrivedAtMs > r.ts) arrivals.set(r.offset, arrivedAtMs);
    }
    c.held.set({ partition: String(st.p) }, held.size);
    out.push(
      resumeAt(
        c.bids,
        st.p,
        st.bidsNext,
        held,
        arrivals,
        // While replaying below bidsNext the clock is rebuilt from timestamps
        // and may trail the one the metadata named: a second crash keeps that.
        Math.max(st.clock, st.resumeClock ?? 0) || undefined,
      ),
    );
  }
  if (st.auctionsNext !== undefined) {
    const queued = new Set<number>(st.replayQueued);
    for (const r of st.core.queuedRefs() as (Ref | undefined)[]) if (r && r.p === st.p) queued.add(r.offset);
    out.push(resumeAt(c.auctions, st.p, st.auctionsNext, queued));
  }
  return out;
}

/** The offset to commit: `next`, or the oldest of `held` with the metadata naming what to read again. */
function resumeAt(
  topic: string,
  partition: number,
  next: number,
  held: ReadonlySet<number>,
  arrivals?: ReadonlyMap<number, number>,
  clock?: number,
): TopicPartitionOffset {
  if (held.size === 0 && clock === undefined) return { topic, partition, offset: next, metadata: "" };
  let oldest = next;
  for (const o of held) if (o < oldest) oldest = o;
  return {
    topic,
    partition,
    offset: oldest,
    metadata: encodeHeldMeta({ u: next, h: [...held], a: arrivals, c: clock }),
  };
}

/**
 * What a partition rebuild reads back from the log (in read_committed, to
 * the log end): the latest auction snapshot per auction from the compacted
 * prices topic, and the partition's earlier decisions from the accepted,
 * dead-letter and transactions topics, committed in the same transactions
 * as the snapshots. `BidProcessor` feeds both to fresh cores.
 */
import type { DecidedBid, Decision } from "../domain/bid-core.ts";
import { readToEnd } from "../kafka/read.ts";
import type { Admin, KafkaRecord, Transport } from "../kafka/transport.ts";
import { IN_BOOK_HEADER, SEQ_HEADER } from "./outputs.ts";

/** Where a rebuild reads. */
export interface RebuildSource {
  readonly transport: Transport;
  readonly admin: Admin;
  /** Prefix of the reads' throwaway consumer groups (the processor's group). */
  readonly groupPrefix: string;
  readonly prices: string;
  readonly bidsAccepted: string;
  readonly bidsRejected: string;
  readonly transactions: string;
}

/** An earlier decision of partition `p`, replayed by a rebuild. */
export type PartitionDecision = Decision & { readonly p: number };

/** The parts of a price update the rebuild touches. */
interface PriceRecord {
  version?: number;
}

/**
 * The latest snapshot (highest version) of every auction of partitions
 * `ps`, as JSON text, by partition. `onUnusable` counts a record that is not JSON.
 */
export async function readSnapshots(
  src: RebuildSource,
  ps: ReadonlySet<number>,
  onUnusable: (r: KafkaRecord) => void,
): Promise<Map<number, string[]>> {
  const latest = new Map<string, { p: number; version: number; v: PriceRecord }>();
  await readToEnd({
    transport: src.transport,
    admin: src.admin,
    topic: src.prices,
    partitions: ps,
    groupPrefix: src.groupPrefix,
    onRecord: (r) => {
      if (r.value === null || r.key === null) return;
      try {
        const v = JSON.parse(r.value.toString("utf8")) as PriceRecord;
        const version = typeof v.version === "number" ? v.version : 0;
        const cur = latest.get(r.key);
        if (!cur || version > cur.version) latest.set(r.key, { p: r.partition, version, v });
      } catch {
        onUnusable(r);
      }
    },
  });
  // Grouped by partition once: a rebuild of 48 partitions read every
  // snapshot 48 times.
  const snapshotsOf = new Map<number, string[]>();
  for (const l of latest.values()) {
    const list = snapshotsOf.get(l.p) ?? [];
    list.push(JSON.stringify(l.v));
    snapshotsOf.set(l.p, list);
  }
  return snapshotsOf;
}

/**
 * The decisions of partitions `ps` that a rebuild replays: bids that
 * reached their auction's book (IN_BOOK_HEADER) and closed auctions, in
 * decision order, by partition. Records written before SEQ_HEADER existed
 * are replayed first, in topic order, by the rules of their time (every bid
 * but the malformed, unknown-auction and duplicate ones).
 */
export async function readDecisions(
  src: RebuildSource,
  ps: ReadonlySet<number>,
): Promise<Map<number, PartitionDecision[]>> {
  const out: PartitionDecision[] = [];
  let legacy = -1e15;
  const read = (topic: string, onRecord: (r: KafkaRecord, seq: number) => void) =>
    readToEnd({
      transport: src.transport,
      admin: src.admin,
      topic,
      partitions: ps,
      groupPrefix: src.groupPrefix,
      onRecord: (r) => {
        if (r.value === null) return;
        const h = r.headers?.[SEQ_HEADER];
        onRecord(r, h === undefined ? legacy++ : Number(h));
      },
    });
  for (const [topic, accepted] of [
    [src.bidsAccepted, true],
    [src.bidsRejected, false],
  ] as const) {
    await read(topic, (r, seq) => {
      try {
        const v = JSON.parse(r.value?.toString("utf8") ?? "") as Partial<DecidedBid> & { reason?: unknown };
        const inBook =
          r.headers?.[SEQ_HEADER] === undefined
            ? v.reason !== "malformed" && v.reason !== "auction_not_found" && v.reason !== "duplicate"
            : r.headers?.[IN_BOOK_HEADER] === "1";
        if (!inBook) return;
        if (
          typeof v.bid_id !== "string" ||
          typeof v.auction_id !== "string" ||
          typeof v.bidder_id !== "string" ||
          typeof v.amount !== "number" ||
          typeof v.placed_at !== "string"
        )
          return;
        out.push({
          kind: accepted ? "accepted" : "rejected",
          p: r.partition,
          seq,
          bid: {
            bid_id: v.bid_id,
            auction_id: v.auction_id,
            bidder_id: v.bidder_id,
            amount: v.amount,
            placed_at: v.placed_at,
          },
        });
      } catch {
        // not ours to judge here; the silver-writer dead-letters unusable records
      }
    });
  }
  await read(src.transactions, (r, seq) => {
    if (r.value) out.push({ kind: "transaction", p: r.partition, seq, raw: r.value });
  });
  // Grouped by partition once: a rebuild of 48 partitions read every
  // decision 48 times.
  const decisionsOf = new Map<number, PartitionDecision[]>();
  for (const d of out.sort((a, b) => a.seq - b.seq)) {
    const list = decisionsOf.get(d.p) ?? [];
    list.push(d);
    decisionsOf.set(d.p, list);
  }
  return decisionsOf;
}

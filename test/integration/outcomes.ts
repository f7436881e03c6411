/**
 * Outcomes, compared bid by bid and auction by auction (issue #13).
 *
 * The oracle replays the records of the input topics, as they are in the
 * log, through one pure `BidProcessorCore` per partition: each partition's
 * bids and auctions merged in log-time order, users first, the clock taken
 * from the records, and at the end the time at which the check runs. It knows
 * nothing of the bid-processor's runtime (fetching, batching, transactions,
 * rebuilds, rebalances, idle clocks), so a run of the real processors that
 * was crashed, restarted, rebalanced or started late must produce exactly
 * the oracle's outcomes: same accepted bids (amount, fraud score, sequence,
 * effective end), same rejection reasons, same winners, prices and close
 * times, same fraud alerts.
 */
import { expect } from "vitest";
import type { AuctionPipeline, topicNames } from "../../api/v1alpha1/pipeline.ts";
import { bidCoreOptions } from "../../processors/bid-processor/processor.ts";
import { BidProcessorCore, type OutputRecord } from "../../processors/domain/bid-core.ts";
import type { FraudModels } from "../../processors/fraud/model.ts";
import type { KafkaRecord } from "../../processors/kafka/transport.ts";
import { add, diffOutcomes, type Json, type Outcomes, outcomeLine, size } from "../outcome-lines.ts";
import { type Env, readTopic } from "./processors-harness.ts";

export { diffOutcomes, type Outcomes, size } from "../outcome-lines.ts";

const OUTPUT_TOPICS = [
  ["bidsAccepted", "bids.accepted"],
  ["bidsRejected", "bids.rejected"],
  ["transactions", "transactions"],
  ["fraudAlerts", "fraud-alerts"],
] as const;

/**
 * Where a pipeline's records are read from: the test environment's broker
 * (`Env` of the processors' harness) or another one (the local cluster's).
 */
export interface OutcomeSource {
  readonly pipeline: AuctionPipeline;
  readonly topics: ReturnType<typeof topicNames>;
  /** Every committed record of a topic, read to its end. */
  read(topic: string): Promise<KafkaRecord[]>;
}

function sourceOf(s: Env | OutcomeSource): OutcomeSource {
  if ("read" in s) return s;
  return { pipeline: s.pipeline, topics: s.topics, read: (topic) => readTopic(s, topic) };
}

/** What the processors committed to the output topics. */
export async function liveOutcomes(from: Env | OutcomeSource, scores = true): Promise<Outcomes> {
  const env = sourceOf(from);
  const out: Outcomes = new Map();
  for (const [logical, key] of OUTPUT_TOPICS) {
    for (const r of await env.read(env.topics[key].name)) {
      if (r.value) add(out, outcomeLine(logical, JSON.parse(r.value.toString("utf8")) as Json, scores));
    }
  }
  return out;
}

/** The oracle: the input topics replayed through pure cores, partition by partition. */
export async function oracleOutcomes(
  from: Env | OutcomeSource,
  endMs = Date.now(),
  scores = true,
  /** The fraud models the run had (a replay scores with the same ones). */
  models?: FraudModels,
): Promise<Outcomes> {
  const env = sourceOf(from);
  const users = await env.read(env.topics.users.name);
  const byPartition = new Map<number, { bids: KafkaRecord[]; auctions: KafkaRecord[] }>();
  const part = (p: number) => {
    const x = byPartition.get(p) ?? { bids: [], auctions: [] };
    byPartition.set(p, x);
    return x;
  };
  for (const r of await env.read(env.topics.bids.name)) part(r.partition).bids.push(r);
  for (const r of await env.read(env.topics.auctions.name)) part(r.partition).auctions.push(r);
  const out: Outcomes = new Map();
  const collect = (os: readonly OutputRecord[]) => {
    for (const o of os) add(out, outcomeLine(o.topic, o.value as Json, scores));
  };
  for (const { bids, auctions } of byPartition.values()) {
    const core = new BidProcessorCore(bidCoreOptions(env.pipeline, undefined, models));
    for (const u of users) if (u.value) core.onUser(u.value);
    bids.sort((a, b) => a.offset - b.offset);
    auctions.sort((a, b) => a.offset - b.offset);
    let clock = 0;
    let i = 0;
    let j = 0;
    while (i < bids.length || j < auctions.length) {
      const b = bids[i];
      const a = auctions[j];
      // Log-time order; on a tie the auction first (it was logged in time for the bid).
      if (a && (!b || a.timestamp <= b.timestamp)) {
        j++;
        if (a.value) collect(core.onAuction(a.value, a.timestamp).outputs);
      } else if (b) {
        i++;
        clock = Math.max(clock, b.timestamp);
        collect(core.onBid(b.value ?? Buffer.alloc(0), clock).outputs);
      }
    }
    collect(core.tick(Math.max(clock, endMs)));
  }
  return out;
}

/**
 * The committed outcomes equal the oracle's, bid by bid and auction by
 * auction (on a difference, the run's rejection details of the first bids
 * that differ are printed); `records`: at least this many bid records and
 * auctions are compared.
 */
export async function expectOracleOutcomes(from: Env | OutcomeSource, records: number): Promise<void> {
  const env = sourceOf(from);
  const live = await liveOutcomes(env);
  const oracle = await oracleOutcomes(env);
  const diff = diffOutcomes(oracle, live);
  if (diff.length > 0) {
    // The run's side of the first differences, with the detail that explains them.
    const ids = new Set(
      diff
        .map((l) => / bid ([^@ ]+)@/.exec(l)?.[1])
        .filter((id): id is string => id !== undefined)
        .slice(0, 8),
    );
    for (const r of await env.read(env.topics["bids.rejected"].name)) {
      const v = JSON.parse(r.value?.toString() ?? "{}") as {
        bid_id?: string;
        reason?: string;
        detail?: string;
      };
      if (v.bid_id !== undefined && ids.has(v.bid_id))
        process.stderr.write(
          `[outcomes] run: ${v.bid_id} p${r.partition}@${r.offset} ${v.reason}: ${v.detail}\n`,
        );
    }
  }
  expect(diff, "committed outcomes differ from the oracle's replay of the log").toEqual([]);
  // Every bid record and every auction is in the comparison.
  expect(size(live)).toBeGreaterThanOrEqual(records);
}

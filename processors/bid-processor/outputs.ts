/**
 * What the bid-processor's transactional sink writes: a partition's
 * decisions as Kafka records, each continuing the trace of the input record
 * it derives from, with the partition's decision sequence.
 */
import { traceHeaders } from "../../lib/telemetry.ts";
import { latestPricePerAuction, type OutputRecord, type OutputTopic } from "../domain/bid-core.ts";
import type { OutMessage, TopicMessages } from "../kafka/transport.ts";
import type { BatchTrace } from "../runtime/batch-telemetry.ts";

/** Record header with the partition's decision sequence (accepted, rejected, transactions): a rebuild replays decisions in this order. */
export const SEQ_HEADER = "gavel-seq";
/** Record header on accepted/rejected bids that reached their auction's book (`OutputRecord.inBook`). */
export const IN_BOOK_HEADER = "gavel-in-book";

/**
 * The outputs of one transaction, each with the input record it derives
 * from: its index in the batch (whose `BatchTrace` gives the record's trace
 * context), or -1 (a close or an expiry because time passed: the active
 * context). Two parallel arrays, so an output costs no object of its own.
 */
export class Outputs {
  readonly records: OutputRecord[] = [];
  /** For each of `records`, the index of its input record in the batch, or -1. */
  readonly from: number[] = [];

  get length(): number {
    return this.records.length;
  }

  /** Appends `records`, derived from the batch's record `from` (-1: from none). */
  push(records: readonly OutputRecord[], from = -1): void {
    for (const r of records) {
      this.records.push(r);
      this.from.push(from);
    }
  }
}

/**
 * The records of partition `partition`'s transaction: only the latest price
 * update per auction, every record to the input's partition number, keyed by
 * auction; accepted, rejected and transaction records numbered from `seq`.
 * Returns the batches and the next sequence number.
 */
export function encodeOutputs(
  outputs: Outputs,
  o: {
    readonly partition: number;
    readonly seq: number;
    readonly topics: Readonly<Record<OutputTopic, string>>;
    /** The trace context of the batch the outputs derive from (none: a tick's outputs). */
    readonly trace?: BatchTrace;
  },
): { batches: TopicMessages[]; seq: number } {
  const byTopic = new Map<string, OutMessage[]>();
  let seq = o.seq;
  // The kept outputs are a subsequence of `outputs.records`, in order: `j`
  // walks along to find each one's input record.
  let j = 0;
  for (const out of latestPricePerAuction(outputs.records)) {
    while (outputs.records[j] !== out) j++;
    const from = outputs.from[j++] ?? -1;
    const topic = o.topics[out.topic];
    const list = byTopic.get(topic) ?? [];
    let headers = from >= 0 && o.trace ? o.trace.headers(from) : traceHeaders();
    if (out.topic === "bidsAccepted" || out.topic === "bidsRejected" || out.topic === "transactions") {
      headers = { ...headers, [SEQ_HEADER]: String(seq++) };
      if (out.inBook) headers[IN_BOOK_HEADER] = "1";
    }
    list.push({
      key: out.key === "" ? null : out.key,
      value: JSON.stringify(out.value),
      partition: o.partition,
      headers,
    });
    byTopic.set(topic, list);
  }
  return { batches: [...byTopic].map(([topic, messages]) => ({ topic, messages })), seq };
}

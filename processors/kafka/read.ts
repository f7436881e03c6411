import { randomUUID } from "node:crypto";
import type { Admin, GroupConsumer, KafkaRecord, Transport } from "./transport.ts";
import { tpKey } from "./transport.ts";

/**
 * Reads `topic` from the beginning up to the end offsets it has now (only the
 * given partitions, or all), calling `onRecord` in offset order per
 * partition, then leaves. Used to rebuild state from a compacted topic. The
 * consumer uses a throw-away group and commits nothing; read_committed skips
 * aborted and open transactions, so only committed state is rebuilt.
 */
export async function readToEnd(opts: {
  transport: Transport;
  admin: Admin;
  topic: string;
  partitions?: ReadonlySet<number>;
  groupPrefix: string;
  onRecord: (r: KafkaRecord) => void;
  timeoutMs?: number;
}): Promise<{ records: number }> {
  const offsets = (await opts.admin.topicOffsets(opts.topic)).filter(
    (p) => opts.partitions === undefined || opts.partitions.has(p.partition),
  );
  const pending = offsets.filter((p) => p.high > p.low);
  if (pending.length === 0) return { records: 0 };
  const consumer = opts.transport.consumer({
    groupId: `${opts.groupPrefix}-read-${randomUUID()}`,
    fromBeginning: true,
  });
  let records = 0;
  const done = () =>
    pending.every((p) => (consumer.positions().get(tpKey(opts.topic, p.partition)) ?? 0) >= p.high);
  const limit = opts.timeoutMs ?? 120_000;
  const deadline = Date.now() + limit;
  // Joining can hang on a broker that just restarted: the whole read is bounded.
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`reading ${opts.topic} to its end took longer than ${limit} ms`)),
      limit,
    );
  });
  expired.catch(() => undefined);
  try {
    await Promise.race([
      expired,
      consumer.run([opts.topic], {
        eachBatch: async (batch, ctx) => {
          if (opts.partitions === undefined || opts.partitions.has(batch.partition)) {
            const target = pending.find((p) => p.partition === batch.partition)?.high ?? 0;
            for (const r of batch.records) {
              if (r.offset >= target) break;
              opts.onRecord(r);
              records++;
            }
          }
          const last = batch.records.at(-1);
          if (last) ctx.markProcessed(last.offset);
        },
      }),
    ]);
    while (!done()) {
      if (Date.now() > deadline)
        throw new Error(`reading ${opts.topic} to its end took longer than ${limit} ms`);
      await new Promise((r) => setTimeout(r, 25));
    }
  } finally {
    clearTimeout(timer);
    // Leaving the throw-away group must not hang the caller either.
    await Promise.race([consumer.stop().catch(() => undefined), new Promise((r) => setTimeout(r, 10_000))]);
  }
  return { records };
}

/** A continuously updated view of a (compacted) topic, read by every replica. */
export function tailTopic(opts: {
  transport: Transport;
  topic: string;
  groupPrefix: string;
  onRecord: (r: KafkaRecord) => void;
}): { consumer: GroupConsumer; started: Promise<void> } {
  const consumer = opts.transport.consumer({
    groupId: `${opts.groupPrefix}-tail-${randomUUID()}`,
    fromBeginning: true,
  });
  const started = consumer.run([opts.topic], {
    eachBatch: async (batch, ctx) => {
      for (const r of batch.records) opts.onRecord(r);
      const last = batch.records.at(-1);
      if (last) ctx.markProcessed(last.offset);
    },
  });
  return { consumer, started };
}

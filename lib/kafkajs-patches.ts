/**
 * Two allocation fixes to kafkajs 2.2.4's producer, same bytes on the wire.
 * A side-effect module: import it before the first import of "kafkajs" in
 * a module that loads kafkajs (`import "../../lib/kafkajs-patches.ts";`).
 * An allocation profile of the bid-processor at saturation
 * (docs/benchmarks.md) had the two lines below at 16 % and 12 % of
 * everything it allocated; every allocation is later garbage collection,
 * the largest share of its CPU.
 *
 * 1. kafkajs groups a send's messages by partition with
 *    `[...current, message]` for every message (producer/
 *    groupMessagesPerPartition.js), copying the partition's list once per
 *    message: quadratic in the messages a partition gets in one send. The
 *    bid-processor sends all of a transaction's outputs to one partition
 *    per topic (hundreds at saturation). This puts a linear grouping with
 *    the same result (partitions in the order first met, each with its
 *    messages in send order) into the CommonJS module cache under that
 *    file's name, so kafkajs's `require` of it gets this one.
 *    `linearGroupingActive()` says whether it took (kafkajs loaded first
 *    would keep its own); a unit test checks it does when the processors'
 *    and the operator's Kafka modules load kafkajs. ADR 0008.
 * 2. `Encoder.writeUVarInt` (every record's length, offsets, key and value
 *    sizes, headers) built an array and a Buffer per varint; it now writes
 *    the bytes into the encoder's buffer (a prototype method, so load order
 *    does not matter).
 */
import { createRequire } from "node:module";

interface GroupArgs<M> {
  readonly topic: string;
  readonly partitionMetadata: readonly unknown[];
  readonly messages: readonly M[];
  readonly partitioner: (a: { topic: string; partitionMetadata: readonly unknown[]; message: M }) => number;
}

/** Messages by partition, like kafkajs's own, in one pass. */
export function groupMessagesPerPartition<M>(a: GroupArgs<M>): Record<number, M[]> {
  const out: Record<number, M[]> = {};
  if (a.partitionMetadata.length === 0) return out;
  for (const message of a.messages) {
    const partition = a.partitioner({ topic: a.topic, partitionMetadata: a.partitionMetadata, message });
    const list = out[partition];
    if (list) list.push(message);
    else out[partition] = [message];
  }
  return out;
}

const require = createRequire(import.meta.url);
const file = require.resolve("kafkajs/src/producer/groupMessagesPerPartition.js");
if (!require.cache[file]) {
  // The shape CommonJS's loader keeps for a loaded module; only `exports` is read by require().
  require.cache[file] = {
    id: file,
    filename: file,
    loaded: true,
    exports: groupMessagesPerPartition,
  } as unknown as NodeJS.Module; // a cache entry, not a full Module (no parent, paths, children)
}

/** True when kafkajs's producer uses the linear grouping above. */
export function linearGroupingActive(): boolean {
  return require.cache[file]?.exports === groupMessagesPerPartition;
}

/** The part of kafkajs's protocol Encoder the varint writer touches. */
interface KafkajsEncoder {
  buf: Buffer;
  offset: number;
  ensureAvailable(length: number): void;
  writeUVarInt(value: number): KafkajsEncoder;
}

const encoder = require("kafkajs/src/protocol/encoder.js") as { prototype: KafkajsEncoder };
/** kafkajs's own varint writer (the unit test compares the two). */
export const kafkajsWriteUVarInt = encoder.prototype.writeUVarInt;

/** LEB128 of an unsigned 32-bit value straight into the encoder's buffer (at most 5 bytes). */
export function writeUVarInt(this: KafkajsEncoder, value: number): KafkajsEncoder {
  this.ensureAvailable(5);
  const buf = this.buf;
  let v = value;
  while ((v & 0xffffff80) !== 0) {
    buf[this.offset++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  buf[this.offset++] = v & 0x7f;
  return this;
}
encoder.prototype.writeUVarInt = writeUVarInt;

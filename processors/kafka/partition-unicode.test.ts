import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { MemoryBroker, MemoryTransport, murmur2, partitionForKey } from "./memory.ts";

/**
 * Co-partitioning of auctions and bids needs every client to put a key on
 * the same partition: kafkajs (DefaultPartitioner), librdkafka behind
 * @confluentinc/kafka-javascript (partitioner murmur2_random) and the
 * in-memory transport all take murmur2 of the key's UTF-8 bytes, then
 * `(h & 0x7fffffff) % partitions`. Ids are Unicode text now, so the bytes are
 * multi-byte UTF-8 and the hashes' treatment of bytes >= 0x80 matters.
 */
const require = createRequire(import.meta.url);
const kafkajsMurmur2 = require("kafkajs/src/producer/partitioners/default/murmur2.js") as (
  key: Buffer | string,
) => number;

/**
 * librdkafka's rd_murmur2 (src/rdmurmur2.c), transliterated with uint32
 * arithmetic: the aligned path reads little-endian uint32 words, the tail
 * mixes `unsigned char`s (no sign extension), as the C does.
 */
function rdMurmur2(key: Uint8Array): number {
  const m = 0x5bd1e995;
  let h = (0x9747b28c ^ key.length) >>> 0;
  const view = new DataView(key.buffer, key.byteOffset, key.byteLength);
  let i = 0;
  for (; key.length - i >= 4; i += 4) {
    let k = view.getUint32(i, true);
    k = Math.imul(k, m) >>> 0;
    k = (k ^ (k >>> 24)) >>> 0;
    k = Math.imul(k, m) >>> 0;
    h = Math.imul(h, m) >>> 0;
    h = (h ^ k) >>> 0;
  }
  const rest = key.length - i;
  if (rest >= 3) h = (h ^ (key[i + 2]! << 16)) >>> 0;
  if (rest >= 2) h = (h ^ (key[i + 1]! << 8)) >>> 0;
  if (rest >= 1) {
    h = (h ^ key[i]!) >>> 0;
    h = Math.imul(h, m) >>> 0;
  }
  h = (h ^ (h >>> 13)) >>> 0;
  h = Math.imul(h, m) >>> 0;
  h = (h ^ (h >>> 15)) >>> 0;
  return h;
}
/** rd_kafka_msg_partitioner_murmur2: `(rd_murmur2(key) & 0x7fffffff) % partition_cnt`. */
const rdPartition = (key: string, n: number) => (rdMurmur2(Buffer.from(key, "utf8")) & 0x7fffffff) % n;

const KEYS = [
  "d*elmer",
  "*champaignbubbles*",
  "Jürgen",
  "Ju\u0308rgen", // NFD: other bytes, so (correctly) maybe another partition
  "名前",
  "名前の競売",
  "🦊",
  "🦊 fox",
  "👨‍👩‍👧",
  'Ölfass & Söhne, "GmbH"',
  "ÿÿÿÿ", // every byte >= 0x80, a 4-byte block and tails
  "é",
  "éé",
  "ééé",
  "\u{10FFFF}",
  "😀".repeat(128),
  "a b",
  "g7-a-17",
];

describe("partitioning of Unicode keys is the same in every client", () => {
  it("librdkafka's murmur2 (transliterated) matches Kafka's Java test vectors", () => {
    // librdkafka's own unit test (rdmurmur2.c) and Kafka's UtilsTest#testMurmur2.
    const vectors: [string, number][] = [
      ["kafka", 0xd067cf64 | 0],
      ["giberish123456789", 0x8f552b0c | 0],
      ["1234", 0x9fc97b14 | 0],
      ["234", 0xe7c009ca | 0],
      ["34", 0x873930da | 0],
      ["4", 0x5a4b5ca1 | 0],
      ["PreAmbleWillBeRemoved,ThePrePartThatIs", 0x78424f1c | 0],
      ["", 0x106e08d9 | 0],
      ["21", -973932308],
      ["foobar", -790332482],
    ];
    for (const [k, h] of vectors) {
      expect(rdMurmur2(Buffer.from(k)) | 0, k).toBe(h);
      expect(murmur2(Buffer.from(k)), k).toBe(h);
    }
  });

  it("memory transport, kafkajs and librdkafka hash the same UTF-8 bytes to the same partition", () => {
    let seed = 13;
    const rnd = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    const alphabet = [..."azAZ09*-_ .'\"ü名前🦊éÿ€ꙮ\u{1F600}\u{10FFFF}\u200d"];
    const keys = [...KEYS];
    for (let i = 0; i < 3000; i++)
      keys.push(Array.from({ length: 1 + rnd(20) }, () => alphabet[rnd(alphabet.length)]).join(""));
    for (const key of keys) {
      const bytes = Buffer.from(key, "utf8");
      // kafkajs turns a string key into Buffer.from(key) (UTF-8); the same hash as the raw bytes.
      expect(kafkajsMurmur2(key), key).toBe(murmur2(bytes));
      expect(kafkajsMurmur2(bytes), key).toBe(murmur2(bytes));
      expect(rdMurmur2(bytes) | 0, key).toBe(murmur2(bytes));
      for (const n of [1, 3, 12, 64]) {
        const p = partitionForKey(key, n);
        expect((kafkajsMurmur2(key) & 0x7fffffff) % n, key).toBe(p);
        expect(rdPartition(key, n), key).toBe(p);
      }
    }
  });

  it("the librdkafka client is configured with the murmur2 partitioner and sends string keys as UTF-8", () => {
    // @confluentinc/kafka-javascript is optional (built from source); check its
    // source when it is installed: the KafkaJS layer forces murmur2_random
    // (murmur2 for keyed records) and the binding encodes a string key with
    // Nan::Utf8String, i.e. UTF-8, like Buffer.from(key).
    const root = "node_modules/@confluentinc/kafka-javascript";
    if (!existsSync(`${root}/package.json`)) return;
    const producer = readFileSync(`${root}/lib/kafkajs/_producer.js`, "utf8");
    expect(producer).toContain("rdKafkaConfig['partitioner'] = 'murmur2_random'");
    const native = `${root}/src/producer.cc`;
    if (existsSync(native)) expect(readFileSync(native, "utf8")).toMatch(/Nan::Utf8String keyUTF8\(/);
  });

  it("the in-memory broker puts a Unicode-keyed record where partitionForKey says", async () => {
    const broker = new MemoryBroker();
    const t = new MemoryTransport(broker);
    const admin = await t.admin();
    await admin.createTopics([{ name: "bids", partitions: 12, replicationFactor: 1 }]);
    const p = await t.producer();
    await p.send([{ topic: "bids", messages: KEYS.map((key) => ({ key, value: key })) }]);
    await p.close();
    const offsets = await admin.topicOffsets("bids");
    const expected = new Map<number, number>();
    for (const k of KEYS)
      expected.set(partitionForKey(k, 12), (expected.get(partitionForKey(k, 12)) ?? 0) + 1);
    for (const o of offsets) expect(o.high, `partition ${o.partition}`).toBe(expected.get(o.partition) ?? 0);
    await admin.close();
  });
});

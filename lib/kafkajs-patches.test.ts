import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { groupMessagesPerPartition, kafkajsWriteUVarInt, writeUVarInt } from "./kafkajs-patches.ts";

const require = createRequire(import.meta.url);

/** kafkajs's own function, read from its file (the module cache may hold ours under its name). */
function kafkajsOwn(): typeof groupMessagesPerPartition {
  const file = require.resolve("kafkajs/src/producer/groupMessagesPerPartition.js");
  const module = { exports: {} as unknown };
  new Function("module", "exports", readFileSync(file, "utf8"))(module, module.exports);
  return module.exports as typeof groupMessagesPerPartition;
}

describe("kafkajs message grouping", () => {
  it("groups as kafkajs's own function does: partitions in first-met order, messages in send order", () => {
    const own = kafkajsOwn();
    const messages = Array.from({ length: 500 }, (_, i) => ({ value: `m${i}`, partition: (i * 7) % 5 }));
    const args = {
      topic: "t",
      partitionMetadata: [{}, {}, {}, {}, {}],
      messages,
      partitioner: ({ message }: { message: { partition: number } }) => message.partition,
    };
    const mine = groupMessagesPerPartition(args);
    expect(mine).toEqual(own(args));
    expect(Object.keys(mine)).toEqual(Object.keys(own(args)));
    expect(groupMessagesPerPartition({ ...args, partitionMetadata: [] })).toEqual({});
  });

  it("is the one kafkajs's producer uses when a Gavel module loads kafkajs", () => {
    for (const entry of ["processors/kafka/kafkajs.ts", "operator/controller/kafka-admin.ts"]) {
      const out = execFileSync(
        process.execPath,
        [
          "--input-type=module",
          "-e",
          `await import("./${entry}");
           const { linearGroupingActive } = await import("./lib/kafkajs-patches.ts");
           const { createRequire } = await import("node:module");
           // kafkajs's producer is loaded, so its require of the grouping has happened.
           const r = createRequire(process.cwd() + "/");
           const loaded = r.cache[r.resolve("kafkajs/src/producer/sendMessages.js")] !== undefined;
           process.stdout.write(loaded + " " + linearGroupingActive());`,
        ],
        { cwd: new URL("..", import.meta.url).pathname, encoding: "utf8" },
      );
      expect(out, entry).toBe("true true");
    }
  });
});

describe("kafkajs varints", () => {
  it("writes the bytes kafkajs's own writer writes, for every kind of value it is given", () => {
    const Encoder = require("kafkajs/src/protocol/encoder.js") as new () => {
      buffer: Buffer;
      writeVarInt(v: number): unknown;
    };
    // Zigzag of negatives and of large values gives numbers above 2^31 and negative int32s.
    const values = [
      0,
      1,
      -1,
      63,
      -64,
      64,
      127,
      128,
      255,
      16_383,
      16_384,
      2_097_151,
      2_097_152,
      2 ** 31 - 1,
      -(2 ** 31),
    ];
    let x = 7;
    for (let i = 0; i < 5_000; i++) {
      x = (x * 1_103_515_245 + 12_345) % 2_147_483_648;
      values.push(i % 2 === 0 ? x : -x, x >> (i % 31));
    }
    const encode = (write: typeof writeUVarInt) => {
      const e = new Encoder() as unknown as {
        buffer: Buffer;
        writeVarInt(v: number): unknown;
        writeUVarInt(v: number): unknown;
      };
      // An own property: writeVarInt calls this.writeUVarInt, so both paths use `write`.
      e.writeUVarInt = write as unknown as (v: number) => unknown;
      for (const v of values) e.writeVarInt(v);
      for (const v of values) e.writeUVarInt(v >>> 0);
      return e.buffer;
    };
    const mine = encode(writeUVarInt);
    expect(mine.equals(encode(kafkajsWriteUVarInt))).toBe(true);
    expect(mine.length).toBeGreaterThan(values.length * 2);
  });
});

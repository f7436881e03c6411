import { describe, expect, it } from "vitest";
import { chunked } from "./kafkajs.ts";

describe("chunked kafkajs sends", () => {
  it("keeps every record once, in order per topic, at most `max` per send", () => {
    const batches = [
      { topic: "a", messages: [0, 1, 2, 3, 4].map((i) => ({ key: `a${i}`, value: `a${i}`, partition: 0 })) },
      { topic: "b", messages: [0, 1, 2].map((i) => ({ key: `b${i}`, value: `b${i}`, partition: 1 })) },
    ];
    const sends = chunked(batches, 3);
    expect(sends.map((s) => s.reduce((n, t) => n + t.messages.length, 0))).toEqual([3, 3, 2]);
    const per = (topic: string) =>
      sends.flatMap((s) => s.filter((t) => t.topic === topic).flatMap((t) => t.messages.map((m) => m.value)));
    expect(per("a")).toEqual(["a0", "a1", "a2", "a3", "a4"]);
    expect(per("b")).toEqual(["b0", "b1", "b2"]);
    // One entry per topic within a send (kafkajs keeps only the last entry of a repeated topic).
    for (const s of sends) expect(new Set(s.map((t) => t.topic)).size).toBe(s.length);
    expect(sends[1]?.[0]).toMatchObject({
      topic: "a",
      messages: [
        { key: "a3", partition: 0 },
        { key: "a4", partition: 0 },
      ],
    });
  });

  it("splits by size too: about 512 KiB per send, a bigger record alone", () => {
    const big = "x".repeat(200 * 1024);
    const sends = chunked([
      { topic: "a", messages: [0, 1, 2, 3, 4].map((i) => ({ key: `k${i}`, value: big })) },
    ]);
    expect(sends.map((s) => s[0]?.messages.length)).toEqual([2, 2, 1]);
    const huge = chunked([
      {
        topic: "a",
        messages: [
          { key: "h", value: "y".repeat(600 * 1024) },
          { key: "s", value: "z" },
        ],
      },
    ]);
    expect(huge.map((s) => s[0]?.messages.map((m) => m.key))).toEqual([["h"], ["s"]]);
  });

  it("nothing to send for no records", () => {
    expect(chunked([])).toEqual([]);
    expect(chunked([{ topic: "a", messages: [] }])).toEqual([]);
  });
});

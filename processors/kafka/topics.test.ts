import { describe, expect, it } from "vitest";
import { planTopics } from "./topics.ts";

describe("planTopics", () => {
  it("creates missing topics with the replication factor clamped to the brokers", () => {
    const plan = planTopics(
      [{ name: "p.bids", partitions: 12, replicationFactor: 3, configs: { "cleanup.policy": "delete" } }],
      new Map(),
      1,
    );
    expect(plan.create).toEqual([
      { name: "p.bids", partitions: 12, replicationFactor: 1, configs: { "cleanup.policy": "delete" } },
    ]);
    expect(plan.grow).toEqual([]);
  });

  it("grows topics with fewer partitions and never shrinks", () => {
    const plan = planTopics(
      [
        { name: "a", partitions: 6 },
        { name: "b", partitions: 3 },
        { name: "c", partitions: 3 },
      ],
      new Map([
        ["a", { name: "a", partitions: 3 }],
        ["b", { name: "b", partitions: 6 }],
        ["c", { name: "c", partitions: 3 }],
      ]),
      3,
    );
    expect(plan.create).toEqual([]);
    expect(plan.grow).toEqual([{ name: "a", from: 3, to: 6 }]);
    expect(plan.unchanged).toEqual(["b", "c"]);
    expect(plan.tooLarge).toEqual([{ name: "b", have: 6, want: 3 }]);
  });
});

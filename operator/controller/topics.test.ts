import { describe, expect, it } from "vitest";
import { allTopics, parsePipeline } from "../../api/v1alpha1/pipeline.ts";
import type { TopicDescription, TopicSpec } from "../../processors/kafka/transport.ts";
import {
  type ExistingTopic,
  kafkaSecurityFromSecret,
  NOT_SUPPORTED,
  planProvisioning,
  provisionTopics,
  type TopicAdmin,
} from "./topics.ts";

const pipeline = (topics: Record<string, unknown> = {}) =>
  parsePipeline({
    apiVersion: "gavel.dev/v1alpha1",
    kind: "AuctionPipeline",
    metadata: { name: "demo" },
    spec: {
      kafka: { bootstrapServers: "k:9092", topics: { provisioner: "gavel" } },
      topics: { partitions: 3, replicas: 3, ...topics },
      storage: { postgres: { secretRef: { name: "pg" } }, s3: { bucket: "lake" } },
    },
  });

const existing = (entries: [string, number, Record<string, string>][]) =>
  new Map<string, ExistingTopic>(entries.map(([n, partitions, configs]) => [n, { partitions, configs }]));

describe("planProvisioning", () => {
  it("creates missing topics with their configs, replicas clamped to the brokers", () => {
    const plan = planProvisioning(allTopics(pipeline()), new Map(), 1);
    expect(plan.create).toHaveLength(8);
    expect(plan.create.find((t) => t.name === "demo.bids")).toEqual({
      name: "demo.bids",
      partitions: 3,
      replicationFactor: 1,
      configs: { "cleanup.policy": "delete", "retention.ms": "604800000" },
    });
    expect(plan.create.find((t) => t.name === "demo.prices")?.configs).toEqual({
      "cleanup.policy": "compact",
    });
    expect(plan.grow).toEqual([]);
    expect(plan.configure).toEqual([]);
    expect([...plan.topics.values()].every((t) => t.ready === "True" && t.partitions === 3)).toBe(true);
  });

  it("grows partitions and sets owned configs, keeping configs set by others", () => {
    const wanted = allTopics(pipeline({ partitions: 6, config: { "max.message.bytes": "2097152" } }));
    const have = existing(
      wanted.map((t) => [
        t.name,
        3,
        { ...t.config, "max.message.bytes": "1048576", "min.insync.replicas": "2" },
      ]),
    );
    const plan = planProvisioning(wanted, have, 3);
    expect(plan.create).toEqual([]);
    expect(plan.grow).toContainEqual({ name: "demo.bids", from: 3, to: 6 });
    const bids = plan.configure.find((c) => c.name === "demo.bids");
    expect(bids?.changed).toEqual(["max.message.bytes"]);
    expect(bids?.configs).toEqual({
      "cleanup.policy": "delete",
      "retention.ms": "604800000",
      "max.message.bytes": "2097152",
      "min.insync.replicas": "2",
    });
    expect(plan.topics.get("demo.bids")).toEqual({ ready: "True", partitions: 6 });
  });

  it("changes nothing when Kafka matches", () => {
    const wanted = allTopics(pipeline());
    const plan = planProvisioning(wanted, existing(wanted.map((t) => [t.name, 3, { ...t.config }])), 3);
    expect(plan).toMatchObject({ create: [], grow: [], configure: [] });
  });

  it("refuses a partition decrease with NotSupported and says how to fix it", () => {
    const wanted = allTopics(pipeline());
    const have = existing(
      wanted.map((t) => [t.name, t.name === "demo.transactions" ? 8 : 3, { ...t.config }]),
    );
    const plan = planProvisioning(wanted, have, 3);
    expect(plan.grow).toEqual([]);
    const t = plan.topics.get("demo.transactions");
    expect(t).toMatchObject({ ready: "False", partitions: 8, reason: NOT_SUPPORTED });
    expect(t?.message).toContain("has 8 partitions in Kafka, the spec asks for 3");
    expect(t?.message).toContain("set this topic's partitions to 8 or more");
    expect(plan.topics.get("demo.bids")?.ready).toBe("True");
  });
});

/** An in-memory Kafka admin: topics with partitions and their own configs. */
class MemoryTopicAdmin implements TopicAdmin {
  readonly topics = new Map<string, { partitions: number; rf: number; configs: Record<string, string> }>();
  failGrow = false;
  async describeTopics(names: readonly string[]) {
    const out = new Map<string, TopicDescription>();
    for (const n of names) {
      const t = this.topics.get(n);
      if (t) out.set(n, { name: n, partitions: t.partitions });
    }
    return out;
  }
  async createTopics(specs: readonly TopicSpec[]) {
    for (const s of specs)
      this.topics.set(s.name, {
        partitions: s.partitions,
        rf: s.replicationFactor ?? 1,
        configs: { ...s.configs },
      });
  }
  async createPartitions(name: string, partitions: number) {
    if (this.failGrow) throw Object.assign(new Error("policy says no"), { type: "POLICY_VIOLATION" });
    this.topics.get(name)!.partitions = partitions;
  }
  async brokerCount() {
    return 1;
  }
  async close() {}
  async describeTopicConfigs(names: readonly string[]) {
    return new Map(names.map((n) => [n, { ...this.topics.get(n)!.configs }]));
  }
  async replaceTopicConfigs(name: string, configs: Readonly<Record<string, string>>) {
    this.topics.get(name)!.configs = { ...configs };
  }
}

describe("provisionTopics", () => {
  it("creates, then grows and configures, never shrinks or deletes", async () => {
    const admin = new MemoryTopicAdmin();
    admin.topics.set("unrelated", { partitions: 1, rf: 1, configs: {} });
    const first = await provisionTopics(admin, allTopics(pipeline()));
    expect(first.report.created).toHaveLength(8);
    expect(admin.topics.get("demo.bids")).toMatchObject({ partitions: 3, rf: 1 });

    const again = await provisionTopics(admin, allTopics(pipeline()));
    expect(again.report).toEqual({ created: [], grown: [], configured: [], refused: [], failed: [] });

    const grown = await provisionTopics(
      admin,
      allTopics(pipeline({ partitions: 6, retentionMs: 3_600_000 })),
    );
    expect(grown.report.grown).toContain("demo.bids (3 -> 6 partitions)");
    expect(grown.report.configured).toContain("demo.bids (retention.ms)");
    expect(admin.topics.get("demo.bids")).toMatchObject({ partitions: 6 });
    expect(admin.topics.get("demo.bids")?.configs["retention.ms"]).toBe("3600000");
    expect(admin.topics.get("demo.prices")?.configs["retention.ms"]).toBeUndefined();

    const shrink = await provisionTopics(admin, allTopics(pipeline()));
    expect(shrink.report.refused).toHaveLength(8);
    expect(admin.topics.get("demo.bids")?.partitions).toBe(6);
    expect(admin.topics.has("unrelated")).toBe(true);
  });

  it("marks a topic whose change Kafka refuses, and goes on with the others", async () => {
    const admin = new MemoryTopicAdmin();
    await provisionTopics(admin, allTopics(pipeline()));
    admin.failGrow = true;
    const r = await provisionTopics(admin, allTopics(pipeline({ partitions: 4, retentionMs: 1000 })));
    expect(r.report.failed).toContain("demo.bids");
    expect(r.topics.get("demo.bids")).toMatchObject({
      ready: "False",
      reason: "PolicyViolation",
      message: "growing topic demo.bids to 4 partitions failed: policy says no",
    });
    expect(admin.topics.get("demo.bids")?.configs["retention.ms"]).toBe("1000");
  });
});

describe("kafkaSecurityFromSecret", () => {
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  it("reads the processors' variable names from the Secret's data", () => {
    expect(
      kafkaSecurityFromSecret({
        KAFKA_SASL_MECHANISM: b64("SCRAM-SHA-512"),
        KAFKA_SASL_USERNAME: b64("gavel"),
        KAFKA_SASL_PASSWORD: b64("s3cret"),
        KAFKA_TLS: b64("true"),
      }),
    ).toEqual({ sasl: { mechanism: "scram-sha-512", username: "gavel", password: "s3cret" }, tls: {} });
    expect(kafkaSecurityFromSecret(undefined)).toBeUndefined();
  });

  it("explains an incomplete Secret without echoing its values", () => {
    expect(() =>
      kafkaSecurityFromSecret({ KAFKA_SASL_MECHANISM: b64("plain"), KAFKA_SASL_PASSWORD: b64("s3cret") }),
    ).toThrow(/KAFKA_SASL_USERNAME or KAFKA_SASL_PASSWORD is empty/);
    try {
      kafkaSecurityFromSecret({ KAFKA_SASL_MECHANISM: b64("plain"), KAFKA_SASL_PASSWORD: b64("s3cret") });
    } catch (err) {
      expect((err as Error).message).not.toContain("s3cret");
    }
  });
});

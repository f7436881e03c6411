import { describe, expect, it } from "vitest";
import { parsePipeline, processors } from "../../api/v1alpha1/pipeline.ts";
import type { AuctionPipelineStatus } from "../../api/v1alpha1/types.ts";
import {
  computeStatus,
  type ObservedObject,
  parseFraudModel,
  parseLastRollup,
  statusChanged,
} from "./status.ts";

const p = parsePipeline({
  apiVersion: "gavel.dev/v1alpha1",
  kind: "AuctionPipeline",
  metadata: { name: "demo", generation: 3 },
  spec: {
    kafka: { clusterName: "c1", bootstrapServers: "k:9092" },
    storage: { postgres: { secretRef: { name: "pg" } }, s3: { bucket: "lake" } },
    processors: { ingest: {} },
  },
});
const topics = [
  { object: "demo-bids", name: "demo.bids" },
  { object: "demo-users", name: "demo.users" },
];
const now = new Date("2026-11-22T10:00:00Z");

function input(observed: ObservedObject[], over: Partial<Parameters<typeof computeStatus>[0]> = {}) {
  return {
    pipeline: p,
    topics,
    processors: processors(p),
    deploymentName: (x: string) => `demo-${x}`,
    rollupName: "demo-rollup",
    observed: new Map(observed.map((o) => [`${o.kind}/${o.metadata.name}`, o])),
    now,
    ...over,
  };
}
const topic = (name: string, status: string, reason?: string): ObservedObject => ({
  kind: "KafkaTopic",
  metadata: { name },
  status: {
    conditions: [
      { type: "Ready", status, reason, message: reason ? "Decreasing partitions not supported" : undefined },
    ],
  },
});
const deployment = (available: boolean): ObservedObject => ({
  kind: "Deployment",
  metadata: { name: "demo-ingest", generation: 2 },
  spec: { replicas: 1 },
  status: {
    observedGeneration: 2,
    availableReplicas: available ? 1 : 0,
    readyReplicas: available ? 1 : 0,
    conditions: [{ type: "Available", status: available ? "True" : "False" }],
  },
});
const cron: ObservedObject = { kind: "CronJob", metadata: { name: "demo-rollup" } };
const conditionOf = (s: AuctionPipelineStatus, type: string) => s.conditions?.find((c) => c.type === type);

describe("computeStatus", () => {
  it("is Ready when topics, processors and the rollup are", () => {
    const s = computeStatus(
      input([topic("demo-bids", "True"), topic("demo-users", "True"), deployment(true), cron]),
    );
    expect(s.phase).toBe("Ready");
    expect(s.observedGeneration).toBe(3);
    expect(s.topicsReady).toBe("2/2");
    expect(s.processorsReady).toBe("1/1");
    expect(s.conditions?.map((c) => [c.type, c.status])).toEqual([
      ["Ready", "True"],
      ["TopicsReady", "True"],
      ["ProcessorsReady", "True"],
      ["RollupScheduled", "True"],
    ]);
  });

  it("waits for the topic operator and for available pods", () => {
    const s = computeStatus(input([topic("demo-bids", "True"), deployment(false), cron]));
    expect(s.phase).toBe("Progressing");
    expect(conditionOf(s, "TopicsReady")).toMatchObject({
      status: "Unknown",
      reason: "WaitingForTopicOperator",
    });
    expect(conditionOf(s, "ProcessorsReady")).toMatchObject({ status: "False", reason: "Unavailable" });
    expect(s.conditions?.[0]).toMatchObject({
      type: "Ready",
      status: "False",
      reason: "WaitingForTopicOperator",
    });
  });

  it("mirrors NotSupported and turns a Ready pipeline Degraded", () => {
    const ready = { ...p, status: { phase: "Ready" as const } };
    const s = computeStatus(
      input(
        [topic("demo-bids", "False", "NotSupported"), topic("demo-users", "True"), deployment(true), cron],
        { pipeline: ready },
      ),
    );
    expect(s.phase).toBe("Degraded");
    const t = conditionOf(s, "TopicsReady");
    expect(t).toMatchObject({ status: "False", reason: "NotSupported" });
    expect(t?.message).toMatch(/Decreasing partitions not supported.*restore the previous value/);
  });

  it("keeps lastTransitionTime of unchanged conditions, so a repeat pass changes nothing", () => {
    const obs = [topic("demo-bids", "True"), topic("demo-users", "True"), deployment(true), cron];
    const first = computeStatus(input(obs));
    const again = computeStatus(
      input(obs, { pipeline: { ...p, status: first }, now: new Date("2026-11-22T11:00:00Z") }),
    );
    expect(statusChanged(first, again)).toBe(false);
  });

  it("reads the rollup annotation and ignores garbage", () => {
    expect(
      parseLastRollup({
        "gavel.dev/last-rollup": '{"time":"2026-11-22T00:20:00Z","result":"Failed","message":"dq"}',
      }),
    ).toEqual({
      time: "2026-11-22T00:20:00Z",
      result: "Failed",
      message: "dq",
    });
    expect(parseLastRollup({ "gavel.dev/last-rollup": "{nope" })).toBeUndefined();
    expect(parseLastRollup({ "gavel.dev/last-rollup": '{"time":"x","result":"Maybe"}' })).toBeUndefined();
  });

  it("copies the fraud model annotation into status.fraudModel and keeps it when the annotation is gone", () => {
    const model = {
      version: "20261202T030000Z-1a2b3c4d",
      object: "s3://lake/demo/models/fraud/20261202T030000Z-1a2b3c4d.json",
      trainedAt: "2026-12-02T03:00:00.000Z",
      activeFrom: "2026-12-02T03:15:00.000Z",
      rows: 12345,
    };
    expect(parseFraudModel({ "gavel.dev/fraud-model": JSON.stringify({ ...model, extra: 1 }) })).toEqual(
      model,
    );
    expect(parseFraudModel({ "gavel.dev/fraud-model": '{"version":"v"}' })).toBeUndefined();
    expect(parseFraudModel({ "gavel.dev/fraud-model": "{nope" })).toBeUndefined();
    const annotated = {
      ...p,
      metadata: { ...p.metadata, annotations: { "gavel.dev/fraud-model": JSON.stringify(model) } },
    };
    const st = computeStatus(input([], { pipeline: annotated }));
    expect(st.fraudModel).toEqual(model);
    expect(computeStatus(input([], { pipeline: { ...p, status: st } })).fraudModel).toEqual(model);
  });
});

describe("computeStatus with the gavel provisioner", () => {
  const g = parsePipeline({
    apiVersion: "gavel.dev/v1alpha1",
    kind: "AuctionPipeline",
    metadata: { name: "demo", generation: 2 },
    spec: {
      kafka: { bootstrapServers: "k:9092", topics: { provisioner: "gavel" } },
      storage: { postgres: { secretRef: { name: "pg" } }, s3: { bucket: "lake" } },
      processors: { ingest: {} },
    },
  });
  const names = [{ name: "demo.bids" }, { name: "demo.users" }];
  const gin = (provisioned: Parameters<typeof computeStatus>[0]["provisioned"]) =>
    input([deployment(true), cron], { pipeline: g, topics: names, ...(provisioned ? { provisioned } : {}) });

  it("reports the topics as found in Kafka, without KafkaTopic objects", () => {
    const s = computeStatus(
      gin({
        topics: new Map([
          ["demo.bids", { ready: "True", partitions: 12 }],
          ["demo.users", { ready: "True", partitions: 12 }],
        ]),
      }),
    );
    expect(s.phase).toBe("Ready");
    expect(s.topicsReady).toBe("2/2");
    expect(s.topics).toEqual([
      { name: "demo.bids", ready: "True", partitions: 12 },
      { name: "demo.users", ready: "True", partitions: 12 },
    ]);
    expect(conditionOf(s, "TopicsReady")).toMatchObject({
      status: "True",
      reason: "AllTopicsReady",
      message: "2 topics ready in Kafka",
    });
  });

  it("surfaces NotSupported with the fix", () => {
    const message = "Decreasing partitions is not supported: ... set this topic's partitions to 24 or more";
    const s = computeStatus(
      gin({
        topics: new Map([
          ["demo.bids", { ready: "False", partitions: 24, reason: "NotSupported", message }],
          ["demo.users", { ready: "True", partitions: 12 }],
        ]),
      }),
    );
    const tc = conditionOf(s, "TopicsReady");
    expect(tc).toMatchObject({
      status: "False",
      reason: "NotSupported",
      message: `topic demo.bids: ${message}`,
    });
    expect(conditionOf(s, "Ready")).toMatchObject({ status: "False", reason: "NotSupported" });
    expect(s.topics?.[0]).toEqual({
      name: "demo.bids",
      ready: "False",
      partitions: 24,
      reason: "NotSupported",
      message,
    });
    expect(s.topicsReady).toBe("1/2");
  });

  it("reports an unreachable Kafka on TopicsReady and leaves topics Unknown", () => {
    const s = computeStatus(gin({ error: { reason: "KafkaUnavailable", message: "cannot connect" } }));
    expect(conditionOf(s, "TopicsReady")).toMatchObject({
      status: "False",
      reason: "KafkaUnavailable",
      message: "cannot connect",
    });
    expect(s.topics?.every((t) => t.ready === "Unknown" && t.kafkaTopic === undefined)).toBe(true);
    expect(s.phase).toBe("Progressing");
  });
});

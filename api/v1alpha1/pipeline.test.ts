import { describe, expect, it } from "vitest";
import {
  allTopics,
  loadPipelineFile,
  PipelineValidationError,
  parsePipeline,
  processors,
  topicNames,
} from "./pipeline.ts";

const base = {
  apiVersion: "gavel.dev/v1alpha1",
  kind: "AuctionPipeline",
  metadata: { name: "demo" },
  spec: {
    kafka: { clusterName: "c1", bootstrapServers: "k:9092" },
    storage: { postgres: { secretRef: { name: "pg" } }, s3: { bucket: "lake" } },
  },
};

function problems(obj: unknown): string[] {
  try {
    parsePipeline(obj);
  } catch (err) {
    if (err instanceof PipelineValidationError) return [...err.problems];
    throw err;
  }
  throw new Error("expected a validation error");
}

describe("parsePipeline", () => {
  it("applies defaults like the API server", () => {
    const p = parsePipeline(base);
    expect(p.spec.topics.partitions).toBe(12);
    expect(p.spec.topics.replicas).toBe(3);
    expect(p.spec.rollup.concurrencyPolicy).toBe("Forbid");
    expect(p.spec.rollup.timeZone).toBe("UTC");
    expect(p.spec.fraud.quarantineThreshold).toBe(0.8);
    expect(p.spec.fraud.weights.velocity).toBe(0.3);
    expect(p.spec.suspend).toBe(false);
    expect(p.spec.storage.postgres.secretRef.key).toBe("url");
    expect(base.spec).not.toHaveProperty("topics"); // input untouched
  });

  it("runs all four processors when processors is omitted, only the listed ones otherwise", () => {
    expect(processors(parsePipeline(base)).map((p) => p.name)).toEqual([
      "ingest",
      "bid-processor",
      "silver-writer",
      "bronze-archiver",
    ]);
    const p = parsePipeline({ ...base, spec: { ...base.spec, processors: { ingest: { maxReplicas: 9 } } } });
    const ps = processors(p);
    expect(ps.map((x) => x.name)).toEqual(["ingest"]);
    expect(ps[0]?.spec.minReplicas).toBe(1);
    expect(ps[0]?.effectiveMaxReplicas).toBe(9);
  });

  it("clamps consumer maxReplicas to partitions", () => {
    const p = parsePipeline({
      ...base,
      spec: { ...base.spec, topics: { partitions: 3 }, processors: { silverWriter: { maxReplicas: 10 } } },
    });
    expect(processors(p)[0]?.effectiveMaxReplicas).toBe(3);
  });

  it("names the field and the fix", () => {
    const ps = problems({
      ...base,
      spec: {
        ...base.spec,
        rollup: { concurrencyPolicy: "Never" },
        topics: { partitions: 0 },
        kafka: { clusterName: "c" },
      },
    });
    expect(ps.join("\n")).toContain(
      'spec.rollup.concurrencyPolicy: Expected union value (one of "Forbid", "Replace", "Allow")',
    );
    expect(ps.join("\n")).toContain("spec.topics.partitions");
    expect(ps.join("\n")).toContain("spec.kafka.bootstrapServers: Expected required property");
    expect(problems({ ...base, spec: { ...base.spec, suspended: true } })[0]).toMatch(
      /spec.suspended: unknown field/,
    );
  });

  it("checks the cross-field rules", () => {
    const ps = problems({
      ...base,
      spec: {
        ...base.spec,
        topics: { partitions: 4 },
        processors: { ingest: { minReplicas: 5, maxReplicas: 2 }, bidProcessor: { maxReplicas: 8 } },
        rollup: { schedule: "61 * * * *", timeZone: "Mars/Olympus" },
      },
    }).join("\n");
    expect(ps).toContain(
      "spec.processors.ingest.minReplicas: minReplicas must be less than or equal to maxReplicas",
    );
    expect(ps).toContain("spec.processors.bidProcessor.maxReplicas");
    expect(ps).toContain("spec.rollup.schedule");
    expect(ps).toContain("spec.rollup.timeZone: unknown time zone");
  });

  it("requires co-partitioned auction topics and enough output partitions", () => {
    const withOverrides = (overrides: Record<string, unknown>) =>
      problems({ ...base, spec: { ...base.spec, topics: { partitions: 6, overrides } } }).join("\n");
    expect(withOverrides({ bids: { partitions: 12 } })).toContain(
      "spec.topics.overrides: overrides of auctions and prices partitions must equal those of bids",
    );
    expect(
      withOverrides({ bids: { partitions: 12 }, auctions: { partitions: 12 }, prices: { partitions: 12 } }),
    ).toContain(
      "spec.topics.overrides: bidsAccepted, bidsRejected, fraudAlerts and transactions need at least as many partitions as bids",
    );
    const ok = { bidsAccepted: { partitions: 12 }, users: { partitions: 1 } };
    expect(() =>
      parsePipeline({ ...base, spec: { ...base.spec, topics: { partitions: 6, overrides: ok } } }),
    ).not.toThrow();
  });

  it("resolves topic names, overrides and compaction", () => {
    const p = parsePipeline({
      ...base,
      spec: {
        ...base.spec,
        topics: { overrides: { bidsRejected: { name: "dlq", retentionMs: -1 } }, extra: [{ name: "x.y" }] },
      },
    });
    const t = topicNames(p);
    expect(t.bids.name).toBe("demo.bids");
    expect(t["bids.accepted"].name).toBe("demo.bids.accepted");
    expect(t["fraud-alerts"].name).toBe("demo.fraud-alerts");
    expect(t["bids.rejected"]).toMatchObject({ name: "dlq", config: { "retention.ms": "-1" } });
    expect(t.auctions.config["cleanup.policy"]).toBe("compact");
    expect(t.prices.compacted).toBe(true);
    expect(allTopics(p).map((x) => x.name)).toContain("x.y");
    expect(
      problems({ ...base, spec: { ...base.spec, topics: { extra: [{ name: "demo.bids" }] } } })[0],
    ).toMatch(/both resolve to Kafka topic demo.bids/);
  });

  it("loads both examples", async () => {
    const m = await loadPipelineFile("examples/pipeline-minimal.yaml");
    expect(m.metadata.name).toBe("demo");
    const f = await loadPipelineFile("examples/pipeline-full.yaml");
    expect(topicNames(f).bids.partitions).toBe(48);
    expect(f.spec.rollup.timeZone).toBe("Europe/Berlin");
  });
});

describe("topic provisioner", () => {
  const spec = (kafka: Record<string, unknown>) => ({ ...base, spec: { ...base.spec, kafka } });
  it("defaults to strimzi, which needs clusterName", () => {
    expect(parsePipeline(base).spec.kafka.topics.provisioner).toBe("strimzi");
    expect(problems(spec({ bootstrapServers: "k:9092" })).join("\n")).toContain(
      "spec.kafka.clusterName: clusterName is required when topics.provisioner is strimzi",
    );
  });

  it("gavel needs no Strimzi cluster", () => {
    const p = parsePipeline(spec({ bootstrapServers: "k:9092", topics: { provisioner: "gavel" } }));
    expect(p.spec.kafka.topics.provisioner).toBe("gavel");
    expect(p.spec.kafka.clusterName).toBeUndefined();
    expect(
      problems(spec({ bootstrapServers: "k:9092", topics: { provisioner: "kafka" } })).join("\n"),
    ).toContain("spec.kafka.topics.provisioner");
  });
});

describe("observability", () => {
  it("checks resource attribute keys", () => {
    const ps = problems({
      ...base,
      spec: { ...base.spec, observability: { resourceAttributes: { "bad key": "x" } } },
    });
    expect(ps.join("\n")).toContain(
      "spec.observability.resourceAttributes: resourceAttributes keys may hold only",
    );
  });
});

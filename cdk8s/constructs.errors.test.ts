/**
 * Every constructor error of the chart's constructs (one test each) says
 * what is wrong and how to fix it, like cdk8s-plus' *.errors.test.ts.
 */
import type { V1PodSpec } from "@kubernetes/client-node";
import { App, type Chart } from "cdk8s";
import { describe, expect, it } from "vitest";
import { type AuctionPipeline, allTopics, parsePipeline } from "../api/v1alpha1/pipeline.ts";
import { AUTOSCALER_PROPS, render } from "../test/cdk8s-render.ts";
import { ProcessorAutoscaler, type ProcessorAutoscalerProps } from "./autoscaler.ts";
import { ProcessorDeployment, type ProcessorDeploymentProps } from "./deployment.ts";
import { DisruptionBudget } from "./disruption-budget.ts";
import { KafkaTopic, type KafkaTopicProps } from "./kafka-topic.ts";
import { PipelineChart } from "./pipeline-chart.ts";
import { RollupCronJob, type RollupCronJobProps } from "./rollup.ts";
import { IngestService } from "./service.ts";

const podSpec: V1PodSpec = {
  containers: [{ name: "gavel", image: "x", ports: [{ name: "http", containerPort: 8080 }] }],
};

const pipeline: AuctionPipeline = parsePipeline({
  apiVersion: "gavel.dev/v1alpha1",
  kind: "AuctionPipeline",
  metadata: { name: "demo", namespace: "shop" },
  spec: {
    kafka: { clusterName: "c1", bootstrapServers: "k:9092" },
    storage: { postgres: { secretRef: { name: "pg" } }, s3: { bucket: "lake" } },
  },
});

function deployment(over: Partial<ProcessorDeploymentProps>): void {
  render((chart) => {
    new ProcessorDeployment(chart, "d", {
      name: "demo-bid-processor",
      selector: { app: "x" },
      podSpec,
      configHash: "abc",
      ...over,
    });
  });
}

function autoscaler(over: Partial<ProcessorAutoscalerProps>): Record<string, unknown>[] {
  return render((chart) => {
    new ProcessorAutoscaler(chart, "h", { ...AUTOSCALER_PROPS, ...over });
  });
}

function kafkaTopic(over: Partial<KafkaTopicProps>): void {
  const [topic] = allTopics(pipeline);
  render((chart) => {
    new KafkaTopic(chart, "t", { name: "demo-bids", clusterName: "c1", topic: topic!, ...over });
  });
}

function rollup(over: Partial<RollupCronJobProps>): void {
  render((chart) => {
    new RollupCronJob(chart, "r", {
      name: "demo-rollup",
      rollup: pipeline.spec.rollup,
      podSpec,
      configHash: "abc",
      ...over,
    });
  });
}

function chart(p: AuctionPipeline): void {
  new PipelineChart(new App(), "test", { pipeline: p });
}

describe("ProcessorDeployment errors", () => {
  it("rejects a metrics port that is not a port number", () => {
    expect(() => deployment({ metrics: { port: 0, path: "/metrics" } })).toThrow(
      "Deployment demo-bid-processor: metrics port must be an integer 1..65535 (the container port serving /metrics), got 0",
    );
  });

  it("rejects a metrics port the container does not declare", () => {
    expect(() => deployment({ metrics: { port: 9090, path: "/metrics" } })).toThrow(
      "metrics port 9090 is not a container port (8080): declare it in the container's ports or scrape another port",
    );
  });

  it("rejects a relative metrics path", () => {
    expect(() => deployment({ metrics: { port: 8080, path: "metrics" } })).toThrow(
      'metrics path must be an absolute URL path like /metrics, got "metrics"',
    );
  });

  it("rejects a negative replica count", () => {
    expect(() => deployment({ replicas: -1 })).toThrow("replicas must be a non-negative integer");
  });

  it("rejects a label that fights the selector", () => {
    expect(() => deployment({ labels: { app: "y" } })).toThrow("label app conflicts with the selector");
  });
});

describe("ProcessorAutoscaler errors", () => {
  it("rejects maxReplicas above the partitions consumed", () => {
    expect(() => autoscaler({ maxReplicas: 8, partitions: 6 })).toThrow(
      "HPA demo-bid-processor: maxReplicas (8) is above the 6 partitions it consumes (extra replicas would sit idle): lower maxReplicas or raise the partitions",
    );
    expect(autoscaler({ maxReplicas: 6, partitions: 6 })).toHaveLength(1);
  });

  it("rejects a lag target that is not a positive integer", () => {
    expect(() => autoscaler({ lagPerReplica: 0 })).toThrow(
      "HPA demo-bid-processor: lagPerReplica must be a positive integer (records of lag per replica), got 0",
    );
  });

  it("rejects minReplicas 0", () => {
    expect(() => autoscaler({ minReplicas: 0 })).toThrow("suspend the pipeline to scale to zero");
  });

  it("rejects maxReplicas below minReplicas", () => {
    expect(() => autoscaler({ minReplicas: 5, maxReplicas: 4 })).toThrow(
      "maxReplicas (4) is below minReplicas (5): raise maxReplicas or the partitions",
    );
  });
});

describe("DisruptionBudget and IngestService errors", () => {
  const selector = { app: "x" };
  it.each([
    {
      error:
        "PodDisruptionBudget demo-ingest: maxUnavailable must be at least 1, or drains would block forever",
      build: (c: Chart) =>
        new DisruptionBudget(c, "pdb", { name: "demo-ingest", selector, maxUnavailable: 0 }),
    },
    {
      error: "Service demo-ingest: port must be 1..65535, got 70000",
      build: (c: Chart) => new IngestService(c, "svc", { name: "demo-ingest", selector, port: 70000 }),
    },
  ])("$error", ({ build, error }) => {
    expect(() => render(build)).toThrow(error);
  });
});

describe("KafkaTopic errors", () => {
  it("rejects a topic without partitions", () => {
    const [topic] = allTopics(pipeline);
    expect(() => kafkaTopic({ topic: { ...topic!, partitions: 0 } })).toThrow(
      "KafkaTopic demo-bids: partitions must be at least 1",
    );
  });

  it("rejects a topic without replicas", () => {
    const [topic] = allTopics(pipeline);
    expect(() => kafkaTopic({ topic: { ...topic!, replicas: 0 } })).toThrow(
      "KafkaTopic demo-bids: replicas must be at least 1",
    );
  });

  it("rejects an object name that is not a DNS subdomain", () => {
    expect(() => kafkaTopic({ name: "Demo_Bids" })).toThrow(
      `KafkaTopic name "Demo_Bids" is not a DNS subdomain: use lowercase letters, digits, '-' and '.'`,
    );
  });
});

describe("RollupCronJob errors", () => {
  it("rejects a name longer than a CronJob's 52 characters", () => {
    const name = `${"x".repeat(46)}-rollup`;
    expect(() => rollup({ name })).toThrow(
      `CronJob name ${name} is longer than 52 characters: use a shorter pipeline name`,
    );
  });

  it("rejects an empty schedule", () => {
    expect(() => rollup({ rollup: { ...pipeline.spec.rollup, schedule: " " } })).toThrow(
      "CronJob schedule is empty: set spec.rollup.schedule, e.g. '15 0 * * *'",
    );
  });
});

describe("PipelineChart errors", () => {
  it("rejects a pipeline name whose child names would not fit", () => {
    const name = "x".repeat(41);
    expect(() => chart({ ...pipeline, metadata: { ...pipeline.metadata, name } })).toThrow(
      `pipeline name ${name} is longer than 40 characters: child names would not fit; use a shorter name`,
    );
  });

  it("rejects Strimzi topics without the Strimzi cluster's name", () => {
    const kafka = { ...pipeline.spec.kafka, clusterName: undefined };
    expect(() => chart({ ...pipeline, spec: { ...pipeline.spec, kafka } })).toThrow(
      "pipeline demo: spec.kafka.clusterName is required with topics.provisioner strimzi: set it to the Strimzi Kafka cluster's name, or set spec.kafka.topics.provisioner: gavel",
    );
  });
});

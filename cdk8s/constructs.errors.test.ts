/** Every constructor error of the constructs this file covers says what is wrong and how to fix it. */
import type { V1PodSpec } from "@kubernetes/client-node";
import { Chart, Testing } from "cdk8s";
import { describe, expect, it } from "vitest";
import { ProcessorAutoscaler, type ProcessorAutoscalerProps } from "./autoscaler.ts";
import { ProcessorDeployment, type ProcessorDeploymentProps } from "./deployment.ts";

const podSpec: V1PodSpec = {
  containers: [{ name: "gavel", image: "x", ports: [{ name: "http", containerPort: 8080 }] }],
};

function deployment(over: Partial<ProcessorDeploymentProps>): void {
  const chart = new Chart(Testing.app(), "test");
  new ProcessorDeployment(chart, "d", {
    name: "demo-bid-processor",
    selector: { app: "x" },
    podSpec,
    configHash: "abc",
    ...over,
  });
}

function autoscaler(over: Partial<ProcessorAutoscalerProps>): Record<string, unknown>[] {
  const chart = new Chart(Testing.app(), "test");
  new ProcessorAutoscaler(chart, "h", {
    name: "demo-bid-processor",
    deployment: "demo-bid-processor",
    minReplicas: 1,
    maxReplicas: 4,
    cpuUtilizationPercent: 70,
    pipeline: "demo",
    processor: "bid-processor",
    ...over,
  });
  return chart.toJson();
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

  it("rejects a negative replica count and a label that fights the selector", () => {
    expect(() => deployment({ replicas: -1 })).toThrow("replicas must be a non-negative integer");
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

  it("rejects minReplicas 0 and maxReplicas below minReplicas", () => {
    expect(() => autoscaler({ minReplicas: 0 })).toThrow("suspend the pipeline to scale to zero");
    expect(() => autoscaler({ minReplicas: 5, maxReplicas: 4 })).toThrow(
      "maxReplicas (4) is below minReplicas (5): raise maxReplicas or the partitions",
    );
  });
});

/**
 * Helpers of the cdk8s unit tests, which build one construct at a time and
 * look at what it renders (or the error it throws).
 */
import { Chart, Testing } from "cdk8s";
import type { ProcessorAutoscalerProps } from "../cdk8s/autoscaler.ts";

/** The manifests `build` adds to a fresh chart. */
export function render(build: (chart: Chart) => void): Record<string, unknown>[] {
  const chart = new Chart(Testing.app(), "test");
  build(chart);
  return chart.toJson();
}

/** Autoscaler props that pass every check: a test changes the one it is about. */
export const AUTOSCALER_PROPS: ProcessorAutoscalerProps = {
  name: "demo-bid-processor",
  deployment: "demo-bid-processor",
  minReplicas: 1,
  maxReplicas: 4,
  cpuUtilizationPercent: 70,
  pipeline: "demo",
  processor: "bid-processor",
};

/**
 * Names and labels of a pipeline's children. Object names derive from the
 * pipeline name (at most 40 characters, so every child name stays a valid
 * DNS label); labels let the operator find and prune what it manages.
 */
import { createHash } from "node:crypto";
import type { ResolvedTopic } from "../api/v1alpha1/pipeline.ts";

export const PIPELINE_LABEL = "gavel.dev/pipeline";
export const COMPONENT_LABEL = "app.kubernetes.io/component";
export const MANAGED_BY_LABEL = "app.kubernetes.io/managed-by";
export const MANAGED_BY = "gavel-operator";
export const STRIMZI_CLUSTER_LABEL = "strimzi.io/cluster";
/** Hash of the rendered config on the pod template: a config change rolls the pods. */
export const CONFIG_HASH_ANNOTATION = "gavel.dev/config-hash";
/** Where processors and the rollup find the rendered pipeline. */
export const CONFIG_DIR = "/etc/gavel";
export const CONFIG_FILE = `${CONFIG_DIR}/pipeline.yaml`;
/** Port of every processor's HTTP server: /healthz, /readyz, /metrics (and the ingest API). */
export const HTTP_PORT = 8080;
/** Path of the Prometheus text endpoint on HTTP_PORT (processors/runtime/server.ts). */
export const METRICS_PATH = "/metrics";

/** Labels on every child of a pipeline (the operator's selector for pruning). */
export function pipelineLabels(pipeline: string): Record<string, string> {
  return {
    "app.kubernetes.io/name": "gavel",
    "app.kubernetes.io/instance": pipeline,
    "app.kubernetes.io/part-of": "gavel",
    [MANAGED_BY_LABEL]: MANAGED_BY,
    [PIPELINE_LABEL]: pipeline,
  };
}

/** Selector labels of one component's pods (stable: never add to these, selectors are immutable). */
export function selectorLabels(pipeline: string, component: string): Record<string, string> {
  return { [PIPELINE_LABEL]: pipeline, [COMPONENT_LABEL]: component };
}

export function shortHash(text: string, len = 8): string {
  return createHash("sha256").update(text).digest("hex").slice(0, len);
}

/** KafkaTopic object name: `<pipeline>-<suffix with dots as dashes>`, or a hashed name for extra topics. */
export function kafkaTopicObjectName(pipeline: string, topic: ResolvedTopic): string {
  if (topic.suffix !== undefined) return `${pipeline}-${topic.suffix.replaceAll(".", "-")}`;
  const clean = topic.name
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 40);
  return `${pipeline}-x-${clean ? `${clean}-` : ""}${shortHash(topic.name)}`;
}

export const serviceAccountName = (pipeline: string) => `${pipeline}-gavel`;
export const processorObjectName = (pipeline: string, processor: string) => `${pipeline}-${processor}`;
export const rollupObjectName = (pipeline: string) => `${pipeline}-rollup`;

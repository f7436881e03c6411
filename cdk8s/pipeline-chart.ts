import type { V1Container, V1PodSpec } from "@kubernetes/client-node";
import { Chart } from "cdk8s";
import type { Construct } from "constructs";
import { ENV } from "../api/env.ts";
import {
  type AuctionPipeline,
  allTopics,
  processors,
  type ResolvedProcessor,
} from "../api/v1alpha1/pipeline.ts";
import { ProcessorAutoscaler } from "./autoscaler.ts";
import { PipelineConfigMap } from "./config-map.ts";
import { ProcessorDeployment } from "./deployment.ts";
import { DisruptionBudget } from "./disruption-budget.ts";
import { KafkaTopic } from "./kafka-topic.ts";
import {
  COMPONENT_LABEL,
  CONFIG_FILE,
  HTTP_PORT,
  kafkaTopicObjectName,
  METRICS_PATH,
  pipelineLabels,
  processorObjectName,
  rollupObjectName,
  selectorLabels,
  serviceAccountName,
} from "./names.ts";
import { envVar, gavelPodSpec, secretEnvVar } from "./pod.ts";
import { RollupCronJob } from "./rollup.ts";
import { RollupReporterRole } from "./rollup-rbac.ts";
import { IngestService } from "./service.ts";
import { ServiceAccount } from "./service-account.ts";

export interface PipelineChartProps {
  /** The validated pipeline (from `parsePipeline`). */
  readonly pipeline: AuctionPipeline;
  /** Namespace of every child. Default `metadata.namespace`, else `default`. */
  readonly namespace?: string;
}

/**
 * The rendered pipeline a pod reads: only what it needs, so that changing
 * one processor's autoscaling does not restart the others. `suspend` is left
 * out: pausing scales to zero, it does not change the config.
 */
function renderedConfig(p: AuctionPipeline, namespace: string, only?: ResolvedProcessor): unknown {
  // ingestAuth is delivered as a secretKeyRef env var (ingest only); the rendered file carries no secret names it does not need.
  // observability reaches the pods as OTEL_* env vars; processors do not read it from the file.
  const {
    processors: _all,
    suspend: _suspend,
    ingestAuth: _auth,
    observability: _observability,
    ...spec
  } = p.spec;
  return {
    apiVersion: p.apiVersion,
    kind: p.kind,
    metadata: { name: p.metadata.name, namespace },
    spec:
      only === undefined ? spec : { ...spec, processors: { [only.key]: { logLevel: only.spec.logLevel } } },
  };
}

/** Longest pipeline name: the longest child name (`<name>-bronze-archiver` and such) must stay a DNS label. */
const MAX_PIPELINE_NAME = 40;

/**
 * A processor's HTTP server (processors/runtime/server.ts): started once
 * `/healthz` answers (it has 2 minutes), restarted when it stops answering,
 * out of the Service while `/readyz` says not ready.
 */
const PROCESSOR_CONTAINER: Partial<V1Container> = {
  ports: [{ name: "http", containerPort: HTTP_PORT, protocol: "TCP" }],
  startupProbe: { httpGet: { path: "/healthz", port: "http" }, periodSeconds: 2, failureThreshold: 60 },
  livenessProbe: { httpGet: { path: "/healthz", port: "http" }, periodSeconds: 10, failureThreshold: 3 },
  readinessProbe: { httpGet: { path: "/readyz", port: "http" }, periodSeconds: 5, failureThreshold: 2 },
};

/** What every part of one pipeline's chart shares. */
interface PipelineScope {
  readonly pipeline: AuctionPipeline;
  /** `metadata.name` of the pipeline, the prefix of every child name. */
  readonly name: string;
  readonly namespace: string;
  /** The pods' ServiceAccount. */
  readonly serviceAccount: string;
}

/** The pod of one processor: `gavel processor <name>`, its HTTP port, and the ingest API keys for ingest. */
function processorPodSpec(ps: PipelineScope, proc: ResolvedProcessor, configMap: string): V1PodSpec {
  const podSpec = gavelPodSpec({
    pipeline: ps.pipeline,
    image: proc.image,
    args: ["processor", proc.name, "-f", CONFIG_FILE],
    configMap,
    serviceAccount: ps.serviceAccount,
    resources: proc.spec.resources,
    logLevel: proc.spec.logLevel,
    telemetry: {
      serviceName: `gavel-${proc.name}`,
      namespace: ps.namespace,
      workload: { kind: "deployment", name: processorObjectName(ps.name, proc.name) },
    },
    container: PROCESSOR_CONTAINER,
  });
  const env = podSpec.containers[0]!.env!;
  // processors/runtime/config.ts reads the port from GAVEL_HTTP_PORT.
  env.push(envVar(ENV.httpPort, String(HTTP_PORT)));
  if (proc.key === "ingest") {
    // API keys by reference only: processors/ingest/auth.ts reads GAVEL_API_KEYS.
    const ref = ps.pipeline.spec.ingestAuth.apiKeysSecretRef;
    env.push(secretEnvVar(ENV.apiKeys, ref?.name ?? `${ps.name}-ingest-keys`, ref?.key ?? "keys"));
  }
  return podSpec;
}

/** The rollup's pod: `gavel rollup` of yesterday plus the backfill days, then the fraud model when asked. */
function rollupPodSpec(ps: PipelineScope, configMap: string): V1PodSpec {
  const s = ps.pipeline.spec;
  return gavelPodSpec({
    pipeline: ps.pipeline,
    image: s.image,
    args: [
      "rollup",
      "-f",
      CONFIG_FILE,
      "--backfill-days",
      String(s.rollup.backfillDays),
      ...(s.fraud.model.train ? ["--train-fraud-model"] : []),
    ],
    configMap,
    serviceAccount: ps.serviceAccount,
    resources: s.rollup.resources,
    logLevel: "info",
    telemetry: {
      serviceName: "gavel-rollup",
      namespace: ps.namespace,
      workload: { kind: "cronjob", name: rollupObjectName(ps.name) },
    },
    automountToken: true,
    restartPolicy: "Never",
  });
}

/**
 * Everything one AuctionPipeline runs on, as cdk8s constructs, in this
 * order: its Strimzi KafkaTopics, the ServiceAccount, each processor's
 * workload, the gold rollup.
 */
export class PipelineChart extends Chart {
  constructor(scope: Construct, id: string, props: PipelineChartProps) {
    const pipeline = props.pipeline;
    const name = pipeline.metadata.name;
    if (name.length > MAX_PIPELINE_NAME)
      throw new Error(
        `pipeline name ${name} is longer than ${MAX_PIPELINE_NAME} characters: child names would not fit; use a shorter name`,
      );
    const namespace = props.namespace ?? pipeline.metadata.namespace ?? "default";
    super(scope, id, { namespace, labels: pipelineLabels(name), disableResourceNameHashes: true });
    // With the gavel provisioner the operator creates the topics through the
    // Kafka admin API (operator/controller/topics.ts): no KafkaTopic objects.
    if (pipeline.spec.kafka.topics.provisioner === "strimzi") this.addStrimziTopics(pipeline);
    const sa = new ServiceAccount(this, "service-account", { name: serviceAccountName(name) });
    const ps: PipelineScope = { pipeline, name, namespace, serviceAccount: sa.name };
    for (const proc of processors(pipeline)) this.addProcessor(ps, proc);
    this.addRollup(ps);
  }

  /** One KafkaTopic per topic, for the Strimzi topic operator of `spec.kafka.clusterName`. */
  private addStrimziTopics(p: AuctionPipeline): void {
    const name = p.metadata.name;
    const clusterName = p.spec.kafka.clusterName;
    if (clusterName === undefined)
      throw new Error(
        `pipeline ${name}: spec.kafka.clusterName is required with topics.provisioner strimzi: set it to the Strimzi Kafka cluster's name, or set spec.kafka.topics.provisioner: gavel`,
      );
    for (const topic of allTopics(p)) {
      new KafkaTopic(this, `topic-${topic.key}`, {
        name: kafkaTopicObjectName(name, topic),
        clusterName,
        topic,
        labels: { [COMPONENT_LABEL]: "topic" },
      });
    }
  }

  /**
   * A processor's workload: its config, Deployment, autoscaler (none while
   * suspended: the Deployment is held at 0), disruption budget and, for
   * ingest, the Service in front of the API.
   */
  private addProcessor(ps: PipelineScope, proc: ResolvedProcessor): void {
    const suspended = ps.pipeline.spec.suspend;
    const objName = processorObjectName(ps.name, proc.name);
    const selector = selectorLabels(ps.name, proc.name);
    const labels = { [COMPONENT_LABEL]: proc.name };
    const config = new PipelineConfigMap(this, `${proc.name}-config`, {
      name: objName,
      pipeline: renderedConfig(ps.pipeline, ps.namespace, proc),
      labels,
    });
    new ProcessorDeployment(this, `${proc.name}-deployment`, {
      name: objName,
      selector,
      podSpec: processorPodSpec(ps, proc, config.name),
      configHash: config.hash,
      // processors/runtime/server.ts serves /metrics on the http port.
      metrics: { port: HTTP_PORT, path: METRICS_PATH },
      // Suspended: 0. Running: the HPA owns the count.
      ...(suspended ? { replicas: 0 } : {}),
    });
    if (!suspended) this.addAutoscaler(ps.name, proc);
    new DisruptionBudget(this, `${proc.name}-pdb`, { name: objName, selector, labels });
    if (proc.key === "ingest") new IngestService(this, "ingest-service", { name: objName, selector, labels });
  }

  /** CPU always; consumer lag for a consumer with `lagPerReplica`; never more replicas than partitions. */
  private addAutoscaler(pipeline: string, proc: ResolvedProcessor): void {
    const objName = processorObjectName(pipeline, proc.name);
    const { autoscaling } = proc.spec;
    new ProcessorAutoscaler(this, `${proc.name}-hpa`, {
      name: objName,
      deployment: objName,
      labels: { [COMPONENT_LABEL]: proc.name },
      minReplicas: proc.effectiveMinReplicas,
      maxReplicas: proc.effectiveMaxReplicas,
      ...(proc.consumes.length > 0
        ? { partitions: Math.max(...proc.consumes.map((t) => t.partitions)) }
        : {}),
      cpuUtilizationPercent: autoscaling.cpuUtilizationPercent,
      ...(proc.key !== "ingest" && autoscaling.lagPerReplica !== undefined
        ? { lagPerReplica: autoscaling.lagPerReplica }
        : {}),
      scaleDownStabilizationSeconds: autoscaling.scaleDownStabilizationSeconds,
      pipeline,
      processor: proc.name,
    });
  }

  /** The gold rollup: its config, the Role that lets it report on the pipeline, and the CronJob. */
  private addRollup(ps: PipelineScope): void {
    const rollupName = rollupObjectName(ps.name);
    const labels = { [COMPONENT_LABEL]: "rollup" };
    const config = new PipelineConfigMap(this, "rollup-config", {
      name: rollupName,
      pipeline: renderedConfig(ps.pipeline, ps.namespace),
      labels,
    });
    new RollupReporterRole(this, "rollup-reporter", {
      name: rollupName,
      pipeline: ps.name,
      serviceAccount: ps.serviceAccount,
      namespace: ps.namespace,
      labels,
    });
    new RollupCronJob(this, "rollup", {
      name: rollupName,
      rollup: ps.pipeline.spec.rollup,
      configHash: config.hash,
      suspend: ps.pipeline.spec.suspend,
      labels,
      podSpec: rollupPodSpec(ps, config.name),
    });
  }
}

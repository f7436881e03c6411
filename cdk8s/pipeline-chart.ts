import { Chart } from "cdk8s";
import type { Construct } from "constructs";
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
import { gavelPodSpec } from "./pod.ts";
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

/** Everything one AuctionPipeline runs on, as cdk8s constructs. */
export class PipelineChart extends Chart {
  constructor(scope: Construct, id: string, props: PipelineChartProps) {
    const namespace = props.namespace ?? props.pipeline.metadata.namespace ?? "default";
    const name = props.pipeline.metadata.name;
    super(scope, id, { namespace, labels: pipelineLabels(name), disableResourceNameHashes: true });
    const p = props.pipeline;
    if (name.length > 40)
      throw new Error(
        `pipeline name ${name} is longer than 40 characters: child names would not fit; use a shorter name`,
      );
    const suspended = p.spec.suspend;

    // With the gavel provisioner the operator creates the topics through the
    // Kafka admin API (operator/controller/topics.ts): no KafkaTopic objects.
    if (p.spec.kafka.topics.provisioner === "strimzi") {
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

    const sa = new ServiceAccount(this, "service-account", { name: serviceAccountName(name) });

    for (const proc of processors(p)) {
      const objName = processorObjectName(name, proc.name);
      const selector = selectorLabels(name, proc.name);
      const config = new PipelineConfigMap(this, `${proc.name}-config`, {
        name: objName,
        pipeline: renderedConfig(p, namespace, proc),
        labels: { [COMPONENT_LABEL]: proc.name },
      });
      const podSpec = gavelPodSpec({
        pipeline: p,
        image: proc.image,
        args: ["processor", proc.name, "-f", CONFIG_FILE],
        configMap: config.name,
        serviceAccount: sa.name,
        resources: proc.spec.resources,
        logLevel: proc.spec.logLevel,
        telemetry: {
          serviceName: `gavel-${proc.name}`,
          namespace,
          workload: { kind: "deployment", name: objName },
        },
        container: {
          ports: [{ name: "http", containerPort: HTTP_PORT, protocol: "TCP" }],
          startupProbe: {
            httpGet: { path: "/healthz", port: "http" },
            periodSeconds: 2,
            failureThreshold: 60,
          },
          livenessProbe: {
            httpGet: { path: "/healthz", port: "http" },
            periodSeconds: 10,
            failureThreshold: 3,
          },
          readinessProbe: {
            httpGet: { path: "/readyz", port: "http" },
            periodSeconds: 5,
            failureThreshold: 2,
          },
        },
      });
      // processors/runtime/config.ts reads the port from GAVEL_HTTP_PORT.
      podSpec.containers[0]!.env!.push({ name: "GAVEL_HTTP_PORT", value: String(HTTP_PORT) });
      if (proc.key === "ingest") {
        // API keys by reference only: processors/ingest/auth.ts reads GAVEL_API_KEYS.
        const ref = p.spec.ingestAuth.apiKeysSecretRef;
        podSpec.containers[0]!.env!.push({
          name: "GAVEL_API_KEYS",
          valueFrom: { secretKeyRef: { name: ref?.name ?? `${name}-ingest-keys`, key: ref?.key ?? "keys" } },
        });
      }
      new ProcessorDeployment(this, `${proc.name}-deployment`, {
        name: objName,
        selector,
        podSpec,
        configHash: config.hash,
        // processors/runtime/server.ts serves /metrics on the http port.
        metrics: { port: HTTP_PORT, path: METRICS_PATH },
        // Suspended: 0. Running: the HPA owns the count.
        ...(suspended ? { replicas: 0 } : {}),
      });
      if (!suspended) {
        new ProcessorAutoscaler(this, `${proc.name}-hpa`, {
          name: objName,
          deployment: objName,
          labels: { [COMPONENT_LABEL]: proc.name },
          minReplicas: proc.effectiveMinReplicas,
          maxReplicas: proc.effectiveMaxReplicas,
          ...(proc.consumes.length > 0
            ? { partitions: Math.max(...proc.consumes.map((t) => t.partitions)) }
            : {}),
          cpuUtilizationPercent: proc.spec.autoscaling.cpuUtilizationPercent,
          ...(proc.key !== "ingest" && proc.spec.autoscaling.lagPerReplica !== undefined
            ? { lagPerReplica: proc.spec.autoscaling.lagPerReplica }
            : {}),
          scaleDownStabilizationSeconds: proc.spec.autoscaling.scaleDownStabilizationSeconds,
          pipeline: name,
          processor: proc.name,
        });
      }
      new DisruptionBudget(this, `${proc.name}-pdb`, {
        name: objName,
        selector,
        labels: { [COMPONENT_LABEL]: proc.name },
      });
      if (proc.key === "ingest") {
        new IngestService(this, "ingest-service", {
          name: objName,
          selector,
          labels: { [COMPONENT_LABEL]: proc.name },
        });
      }
    }

    const rollupName = rollupObjectName(name);
    const rollupConfig = new PipelineConfigMap(this, "rollup-config", {
      name: rollupName,
      pipeline: renderedConfig(p, namespace),
      labels: { [COMPONENT_LABEL]: "rollup" },
    });
    new RollupReporterRole(this, "rollup-reporter", {
      name: rollupName,
      pipeline: name,
      serviceAccount: sa.name,
      namespace,
      labels: { [COMPONENT_LABEL]: "rollup" },
    });
    new RollupCronJob(this, "rollup", {
      name: rollupName,
      rollup: p.spec.rollup,
      configHash: rollupConfig.hash,
      suspend: suspended,
      labels: { [COMPONENT_LABEL]: "rollup" },
      podSpec: gavelPodSpec({
        pipeline: p,
        image: p.spec.image,
        args: [
          "rollup",
          "-f",
          CONFIG_FILE,
          "--backfill-days",
          String(p.spec.rollup.backfillDays),
          ...(p.spec.fraud.model.train ? ["--train-fraud-model"] : []),
        ],
        configMap: rollupConfig.name,
        serviceAccount: sa.name,
        resources: p.spec.rollup.resources,
        logLevel: "info",
        telemetry: {
          serviceName: "gavel-rollup",
          namespace,
          workload: { kind: "cronjob", name: rollupName },
        },
        automountToken: true,
        restartPolicy: "Never",
      }),
    });
  }
}

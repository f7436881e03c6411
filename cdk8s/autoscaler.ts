import type { V2MetricSpec } from "@kubernetes/client-node";
import { Construct } from "constructs";
import { type ChildProps, childObject, integerIn } from "./child-object.ts";
import { PIPELINE_LABEL } from "./names.ts";

/**
 * External metric the lag target uses, labels `pipeline` and `processor`:
 * served by Prometheus Adapter from the processors' `gavel_consumer_lag_records`
 * (docs/observability.md, ADR 0004).
 */
export const LAG_METRIC = "gavel_consumer_lag";

export interface ProcessorAutoscalerProps extends ChildProps {
  /** Deployment to scale. */
  readonly deployment: string;
  readonly minReplicas: number;
  /** Already clamped to the partition count for consumers. */
  readonly maxReplicas: number;
  /**
   * Partitions of the busiest topic the processor consumes: a consumer group
   * never has more busy members than that, so `maxReplicas` above it is
   * rejected. Default: unset (not a consumer, e.g. ingest).
   */
  readonly partitions?: number;
  /** Target average CPU utilisation in percent of the request. */
  readonly cpuUtilizationPercent: number;
  /** Target consumer lag per replica. Default: unset (CPU only). */
  readonly lagPerReplica?: number;
  /** Pipeline and processor names for the lag metric's selector. */
  readonly pipeline: string;
  readonly processor: string;
  /** Scale-down stabilisation window. Default 300. */
  readonly scaleDownStabilizationSeconds?: number;
}

/**
 * An autoscaling/v2 HorizontalPodAutoscaler. Scale-up is quick (double every
 * 30 s); scale-down removes one pod a minute after the window, because every
 * consumer leaving triggers a group rebalance.
 */
export class ProcessorAutoscaler extends Construct {
  constructor(scope: Construct, id: string, props: ProcessorAutoscalerProps) {
    super(scope, id);
    integerIn(
      props.minReplicas,
      { min: 1 },
      () => `HPA ${props.name}: minReplicas must be at least 1 (suspend the pipeline to scale to zero)`,
    );
    if (props.maxReplicas < props.minReplicas)
      throw new Error(
        `HPA ${props.name}: maxReplicas (${props.maxReplicas}) is below minReplicas (${props.minReplicas}): raise maxReplicas or the partitions`,
      );
    if (props.partitions !== undefined && props.maxReplicas > props.partitions)
      throw new Error(
        `HPA ${props.name}: maxReplicas (${props.maxReplicas}) is above the ${props.partitions} partitions it consumes (extra replicas would sit idle): lower maxReplicas or raise the partitions`,
      );
    if (props.lagPerReplica !== undefined)
      integerIn(
        props.lagPerReplica,
        { min: 1 },
        (lag) =>
          `HPA ${props.name}: lagPerReplica must be a positive integer (records of lag per replica), got ${lag}`,
      );
    const metrics: V2MetricSpec[] = [
      {
        type: "Resource",
        resource: {
          name: "cpu",
          target: { type: "Utilization", averageUtilization: props.cpuUtilizationPercent },
        },
      },
    ];
    if (props.lagPerReplica !== undefined)
      metrics.push({
        type: "External",
        external: {
          metric: {
            name: LAG_METRIC,
            selector: { matchLabels: { pipeline: props.pipeline, processor: props.processor } },
          },
          target: { type: "AverageValue", averageValue: String(props.lagPerReplica) },
        },
      });
    const labels = { ...props.labels, [PIPELINE_LABEL]: props.pipeline };
    childObject(
      this,
      { name: props.name, labels },
      {
        apiVersion: "autoscaling/v2",
        kind: "HorizontalPodAutoscaler",
        spec: {
          scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: props.deployment },
          minReplicas: props.minReplicas,
          maxReplicas: props.maxReplicas,
          metrics,
          behavior: {
            scaleUp: {
              stabilizationWindowSeconds: 0,
              policies: [{ type: "Percent", value: 100, periodSeconds: 30 }],
            },
            scaleDown: {
              stabilizationWindowSeconds: props.scaleDownStabilizationSeconds ?? 300,
              policies: [{ type: "Pods", value: 1, periodSeconds: 60 }],
            },
          },
        },
      },
    );
  }
}

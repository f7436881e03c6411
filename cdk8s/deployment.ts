import type { V1PodSpec } from "@kubernetes/client-node";
import { ApiObject } from "cdk8s";
import { Construct } from "constructs";
import { CONFIG_HASH_ANNOTATION } from "./names.ts";

export interface ProcessorDeploymentProps {
  readonly name: string;
  readonly labels?: Readonly<Record<string, string>>;
  /** Pod selector labels; immutable once created. */
  readonly selector: Readonly<Record<string, string>>;
  readonly podSpec: V1PodSpec;
  /** Hash of the rendered config; changing it rolls the pods. */
  readonly configHash: string;
  /**
   * Fixed replica count. Default: unset, so the HorizontalPodAutoscaler owns
   * the count (server-side apply would otherwise reset it every reconcile).
   * The pipeline sets 0 while suspended.
   */
  readonly replicas?: number;
}

/** A processor's Deployment: rolling update that never drops below the desired count. */
export class ProcessorDeployment extends Construct {
  readonly name: string;
  constructor(scope: Construct, id: string, props: ProcessorDeploymentProps) {
    super(scope, id);
    if (props.replicas !== undefined && (!Number.isInteger(props.replicas) || props.replicas < 0))
      throw new Error(
        `Deployment ${props.name}: replicas must be a non-negative integer, got ${props.replicas}`,
      );
    for (const [k, v] of Object.entries(props.selector))
      if (props.labels?.[k] !== undefined && props.labels[k] !== v)
        throw new Error(`Deployment ${props.name}: label ${k} conflicts with the selector`);
    this.name = props.name;
    new ApiObject(this, "Resource", {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: props.name, labels: { ...props.labels, ...props.selector } },
      spec: {
        ...(props.replicas === undefined ? {} : { replicas: props.replicas }),
        selector: { matchLabels: { ...props.selector } },
        strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
        revisionHistoryLimit: 5,
        template: {
          metadata: {
            labels: { ...props.labels, ...props.selector },
            annotations: { [CONFIG_HASH_ANNOTATION]: props.configHash },
          },
          spec: { terminationGracePeriodSeconds: 60, ...props.podSpec },
        },
      },
    });
  }
}

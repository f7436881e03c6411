import type { V1PodSpec } from "@kubernetes/client-node";
import { Construct } from "constructs";
import { childObject, integerIn, type SelectingProps } from "./child-object.ts";
import { CONFIG_HASH_ANNOTATION } from "./names.ts";

export interface ProcessorDeploymentProps extends SelectingProps {
  readonly podSpec: V1PodSpec;
  /** Hash of the rendered config; changing it rolls the pods. */
  readonly configHash: string;
  /**
   * Fixed replica count. Default: unset, so the HorizontalPodAutoscaler owns
   * the count (server-side apply would otherwise reset it every reconcile).
   * The pipeline sets 0 while suspended.
   */
  readonly replicas?: number;
  /**
   * Where the pods serve Prometheus metrics: the pod template gets the
   * `prometheus.io/scrape`, `prometheus.io/port` and `prometheus.io/path`
   * annotations the usual `kubernetes-pods` scrape job selects on. Default:
   * unset, no annotations.
   */
  readonly metrics?: { readonly port: number; readonly path: string };
}

/** Pod annotations of the Prometheus `kubernetes-pods` scrape convention. */
export const SCRAPE_ANNOTATIONS = {
  scrape: "prometheus.io/scrape",
  port: "prometheus.io/port",
  path: "prometheus.io/path",
} as const;

/** A processor's Deployment: rolling update that never drops below the desired count. */
export class ProcessorDeployment extends Construct {
  readonly name: string;
  constructor(scope: Construct, id: string, props: ProcessorDeploymentProps) {
    super(scope, id);
    if (props.replicas !== undefined)
      integerIn(
        props.replicas,
        { min: 0 },
        (r) => `Deployment ${props.name}: replicas must be a non-negative integer, got ${r}`,
      );
    for (const [k, v] of Object.entries(props.selector))
      if (props.labels?.[k] !== undefined && props.labels[k] !== v)
        throw new Error(`Deployment ${props.name}: label ${k} conflicts with the selector`);
    const annotations: Record<string, string> = { [CONFIG_HASH_ANNOTATION]: props.configHash };
    if (props.metrics !== undefined) {
      const { port, path } = props.metrics;
      integerIn(
        port,
        { min: 1, max: 65535 },
        (p) =>
          `Deployment ${props.name}: metrics port must be an integer 1..65535 (the container port serving /metrics), got ${p}`,
      );
      if (!path.startsWith("/") || /\s/.test(path))
        throw new Error(
          `Deployment ${props.name}: metrics path must be an absolute URL path like /metrics, got ${JSON.stringify(path)}`,
        );
      const ports = props.podSpec.containers.flatMap((c) => c.ports ?? []).map((p) => p.containerPort);
      if (!ports.includes(port))
        throw new Error(
          `Deployment ${props.name}: metrics port ${port} is not a container port (${ports.join(", ") || "none declared"}): declare it in the container's ports or scrape another port`,
        );
      annotations[SCRAPE_ANNOTATIONS.scrape] = "true";
      annotations[SCRAPE_ANNOTATIONS.port] = String(port);
      annotations[SCRAPE_ANNOTATIONS.path] = path;
    }
    this.name = props.name;
    const labels = { ...props.labels, ...props.selector };
    childObject(
      this,
      { name: props.name, labels },
      {
        apiVersion: "apps/v1",
        kind: "Deployment",
        spec: {
          ...(props.replicas === undefined ? {} : { replicas: props.replicas }),
          selector: { matchLabels: { ...props.selector } },
          strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
          revisionHistoryLimit: 5,
          template: {
            metadata: { labels, annotations },
            spec: { terminationGracePeriodSeconds: 60, ...props.podSpec },
          },
        },
      },
    );
  }
}

/**
 * The desired children of a pipeline: a pure function of the pipeline (no
 * API calls, no disk writes). The operator applies exactly this list (adding
 * owner references); `gavel synth` prints it.
 */
import { App } from "cdk8s";
import type { AuctionPipeline } from "../api/v1alpha1/pipeline.ts";
import { PipelineChart } from "./pipeline-chart.ts";

/** A manifest as plain JSON. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: OwnerReference[];
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller: boolean;
  blockOwnerDeletion: boolean;
}

export interface DesiredOptions {
  /** Namespace of the children. Default `metadata.namespace`, else `default`. */
  readonly namespace?: string;
  /** Set as the controller owner reference of every child (the operator passes the live pipeline). */
  readonly owner?: { readonly uid: string };
}

export function desired(pipeline: AuctionPipeline, opts: DesiredOptions = {}): KubeObject[] {
  const app = new App();
  const chart = new PipelineChart(app, pipeline.metadata.name, {
    pipeline,
    ...(opts.namespace === undefined ? {} : { namespace: opts.namespace }),
  });
  const objects = chart.toJson() as KubeObject[];
  if (opts.owner !== undefined) {
    const ref: OwnerReference = {
      apiVersion: pipeline.apiVersion,
      kind: pipeline.kind,
      name: pipeline.metadata.name,
      uid: opts.owner.uid,
      controller: true,
      blockOwnerDeletion: true,
    };
    for (const o of objects) o.metadata.ownerReferences = [ref];
  }
  return objects;
}

/** `kind/name` of an object, for logs and events. */
export function objectKey(o: { kind: string; metadata: { name: string } }): string {
  return `${o.kind}/${o.metadata.name}`;
}

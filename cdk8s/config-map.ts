import { Construct } from "constructs";
import { stringify } from "yaml";
import { type ChildProps, childObject } from "./child-object.ts";
import { shortHash } from "./names.ts";

export interface PipelineConfigMapProps extends ChildProps {
  /** The rendered AuctionPipeline document the pod reads from `/etc/gavel/pipeline.yaml`. */
  readonly pipeline: unknown;
}

/** A ConfigMap holding a rendered pipeline file (no secrets: those are referenced by the pods). */
export class PipelineConfigMap extends Construct {
  readonly name: string;
  /** Hash of the content, put on pod templates so a change rolls the pods. */
  readonly hash: string;
  constructor(scope: Construct, id: string, props: PipelineConfigMapProps) {
    super(scope, id);
    // Sorted keys: the same pipeline renders the same bytes whether it came from
    // a file or from the API server (which returns keys in its own order).
    const text = stringify(props.pipeline, { lineWidth: 0, sortMapEntries: true });
    this.name = props.name;
    this.hash = shortHash(text, 16);
    childObject(this, props, {
      apiVersion: "v1",
      kind: "ConfigMap",
      data: { "pipeline.yaml": text },
    });
  }
}

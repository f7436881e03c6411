import { ApiObject } from "cdk8s";
import { Construct } from "constructs";

export interface ServiceAccountProps {
  readonly name: string;
  readonly labels?: Readonly<Record<string, string>>;
}

/**
 * The identity of the pipeline's pods. Its token is only mounted into the
 * rollup pods (which record their result on the pipeline); processors do not
 * talk to the Kubernetes API.
 */
export class ServiceAccount extends Construct {
  readonly name: string;
  constructor(scope: Construct, id: string, props: ServiceAccountProps) {
    super(scope, id);
    this.name = props.name;
    new ApiObject(this, "Resource", {
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { name: props.name, labels: { ...props.labels } },
      automountServiceAccountToken: false,
    });
  }
}

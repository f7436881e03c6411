import { Construct } from "constructs";
import { type ChildProps, childObject } from "./child-object.ts";

export type ServiceAccountProps = ChildProps;

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
    childObject(this, props, {
      apiVersion: "v1",
      kind: "ServiceAccount",
      automountServiceAccountToken: false,
    });
  }
}

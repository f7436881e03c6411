import { Construct } from "constructs";
import { GROUP, PLURAL } from "../api/v1alpha1/types.ts";
import { type ChildProps, childObject } from "./child-object.ts";

const RBAC_V1 = "rbac.authorization.k8s.io/v1";

/** `name` is the name of both the Role and its RoleBinding. */
export interface RollupReporterRoleProps extends ChildProps {
  /** The pipeline the rollup may annotate (nothing else). */
  readonly pipeline: string;
  readonly serviceAccount: string;
  /** Namespace of the ServiceAccount (RoleBinding subjects need it). */
  readonly namespace: string;
}

/**
 * Lets the rollup record its result as the `gavel.dev/last-rollup`
 * annotation on its own pipeline (get/patch of one named object), which the
 * operator turns into `status.lastRollup`.
 */
export class RollupReporterRole extends Construct {
  constructor(scope: Construct, id: string, props: RollupReporterRoleProps) {
    super(scope, id);
    const rule = {
      apiGroups: [GROUP],
      resources: [PLURAL],
      resourceNames: [props.pipeline],
      verbs: ["get", "patch"],
    };
    childObject(this, props, { apiVersion: RBAC_V1, kind: "Role", rules: [rule] }, "Role");
    const subject = { kind: "ServiceAccount", name: props.serviceAccount, namespace: props.namespace };
    const roleRef = { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: props.name };
    childObject(
      this,
      props,
      { apiVersion: RBAC_V1, kind: "RoleBinding", roleRef, subjects: [subject] },
      "Binding",
    );
  }
}

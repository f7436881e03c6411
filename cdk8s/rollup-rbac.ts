import { ApiObject } from "cdk8s";
import { Construct } from "constructs";
import { GROUP, PLURAL } from "../api/v1alpha1/types.ts";

export interface RollupReporterRoleProps {
  readonly name: string;
  readonly labels?: Readonly<Record<string, string>>;
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
    new ApiObject(this, "Role", {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: { name: props.name, labels: { ...props.labels } },
      rules: [
        { apiGroups: [GROUP], resources: [PLURAL], resourceNames: [props.pipeline], verbs: ["get", "patch"] },
      ],
    });
    new ApiObject(this, "Binding", {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { name: props.name, labels: { ...props.labels } },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: props.name },
      subjects: [{ kind: "ServiceAccount", name: props.serviceAccount, namespace: props.namespace }],
    });
  }
}

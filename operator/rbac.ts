/**
 * The operator's least privilege, defined once. `gavel crds` writes
 * `crds/rbac.yaml` from it and the Helm chart uses `operatorRules()` /
 * `leaderElectionRules()` (or that file). Secrets: `get` only (no list or
 * watch), because with `spec.kafka.topics.provisioner: gavel` the operator
 * connects to Kafka with the Secret named by `spec.kafka.authSecretRef`;
 * children reference every other Secret by name.
 */
import { GROUP, PLURAL } from "../api/v1alpha1/types.ts";

export interface PolicyRule {
  readonly apiGroups: readonly string[];
  readonly resources: readonly string[];
  readonly verbs: readonly string[];
  readonly resourceNames?: readonly string[];
}

/** Verbs to manage a child kind: read through informers, server-side apply, prune. */
const MANAGE = ["get", "list", "watch", "create", "update", "patch", "delete"] as const;

/**
 * Cluster-wide rules (the operator watches every namespace). Each kind the
 * operator applies, watches or prunes must be listed here and nothing else.
 */
export function operatorRules(): PolicyRule[] {
  return [
    // patch: the operator must hold what it grants (RBAC escalation check): the
    // rollup's Role may get/patch its own pipeline to record its result.
    { apiGroups: [GROUP], resources: [PLURAL], verbs: ["get", "list", "watch", "patch"] },
    { apiGroups: [GROUP], resources: [`${PLURAL}/status`], verbs: ["get", "update", "patch"] },
    { apiGroups: ["kafka.strimzi.io"], resources: ["kafkatopics"], verbs: [...MANAGE] },
    { apiGroups: ["apps"], resources: ["deployments"], verbs: [...MANAGE] },
    { apiGroups: ["autoscaling"], resources: ["horizontalpodautoscalers"], verbs: [...MANAGE] },
    { apiGroups: ["policy"], resources: ["poddisruptionbudgets"], verbs: [...MANAGE] },
    { apiGroups: ["batch"], resources: ["cronjobs"], verbs: [...MANAGE] },
    { apiGroups: [""], resources: ["configmaps", "services", "serviceaccounts"], verbs: [...MANAGE] },
    { apiGroups: ["rbac.authorization.k8s.io"], resources: ["roles", "rolebindings"], verbs: [...MANAGE] },
    { apiGroups: ["", "events.k8s.io"], resources: ["events"], verbs: ["create", "patch"] },
    // The gavel topic provisioner reads spec.kafka.authSecretRef by name; never lists or watches Secrets.
    { apiGroups: [""], resources: ["secrets"], verbs: ["get"] },
  ];
}

/** Namespaced rules for leader election in the operator's own namespace. */
export function leaderElectionRules(): PolicyRule[] {
  return [
    {
      apiGroups: ["coordination.k8s.io"],
      resources: ["leases"],
      verbs: ["get", "list", "watch", "create", "update", "patch"],
    },
    // --lease-owner-deployment: the operator reads its own Deployment's uid to own the Lease.
    { apiGroups: ["apps"], resources: ["deployments"], verbs: ["get"] },
  ];
}

export interface RbacOptions {
  /** Namespace the operator runs in. Default `gavel-system`. */
  readonly namespace?: string;
  /** Operator ServiceAccount name. Default `gavel-operator`. */
  readonly serviceAccount?: string;
  /** Name of the roles and bindings. Default `gavel-operator`. */
  readonly name?: string;
}

/** ServiceAccount, ClusterRole(+Binding) and leader-election Role(+Binding). */
export function rbacManifests(opts: RbacOptions = {}): Record<string, unknown>[] {
  const namespace = opts.namespace ?? "gavel-system";
  const sa = opts.serviceAccount ?? "gavel-operator";
  const name = opts.name ?? "gavel-operator";
  const labels = { "app.kubernetes.io/name": "gavel", "app.kubernetes.io/component": "operator" };
  const subjects = [{ kind: "ServiceAccount", name: sa, namespace }];
  return [
    { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: sa, namespace, labels } },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRole",
      metadata: { name, labels },
      rules: operatorRules(),
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name, labels },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name },
      subjects,
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: { name: `${name}-leader-election`, namespace, labels },
      rules: leaderElectionRules(),
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { name: `${name}-leader-election`, namespace, labels },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: `${name}-leader-election` },
      subjects,
    },
  ];
}

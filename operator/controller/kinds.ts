/**
 * The child kinds the operator applies, watches and prunes. `operator/rbac.ts`
 * must grant exactly these (a unit test checks it).
 */
export interface ManagedKind {
  readonly apiVersion: string;
  readonly kind: string;
  /** Resource (plural) name. */
  readonly resource: string;
}

export const MANAGED_KINDS: readonly ManagedKind[] = [
  { apiVersion: "v1", kind: "ServiceAccount", resource: "serviceaccounts" },
  { apiVersion: "v1", kind: "ConfigMap", resource: "configmaps" },
  { apiVersion: "v1", kind: "Service", resource: "services" },
  { apiVersion: "rbac.authorization.k8s.io/v1", kind: "Role", resource: "roles" },
  { apiVersion: "rbac.authorization.k8s.io/v1", kind: "RoleBinding", resource: "rolebindings" },
  { apiVersion: "kafka.strimzi.io/v1", kind: "KafkaTopic", resource: "kafkatopics" },
  { apiVersion: "apps/v1", kind: "Deployment", resource: "deployments" },
  { apiVersion: "autoscaling/v2", kind: "HorizontalPodAutoscaler", resource: "horizontalpodautoscalers" },
  { apiVersion: "policy/v1", kind: "PodDisruptionBudget", resource: "poddisruptionbudgets" },
  { apiVersion: "batch/v1", kind: "CronJob", resource: "cronjobs" },
];

export function groupOf(apiVersion: string): string {
  return apiVersion.includes("/") ? apiVersion.split("/")[0]! : "";
}

/** REST path of a collection, cluster-wide or in one namespace. */
export function collectionPath(k: { apiVersion: string; resource: string }, namespace?: string): string {
  const root = k.apiVersion.includes("/") ? `/apis/${k.apiVersion}` : `/api/${k.apiVersion}`;
  return namespace ? `${root}/namespaces/${namespace}/${k.resource}` : `${root}/${k.resource}`;
}

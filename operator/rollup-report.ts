/**
 * How `gavel rollup` reports its result to the operator: a JSON annotation
 * on its own AuctionPipeline (the rollup's ServiceAccount may get/patch only
 * that object). The operator copies it into `status.lastRollup`.
 */
import { CustomObjectsApi, type KubeConfig, PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import { GROUP, PLURAL, type RollupStatus, VERSION } from "./api/v1alpha1/types.ts";
import { LAST_ROLLUP_ANNOTATION } from "./controller/status.ts";

export { LAST_ROLLUP_ANNOTATION };

/** The annotation value for a result. */
export function lastRollupAnnotation(result: RollupStatus): string {
  return JSON.stringify(result);
}

/**
 * Record the result on the pipeline `namespace/name` (in a pod: POD_NAMESPACE
 * and GAVEL_PIPELINE are set by the operator; the token is mounted).
 */
export async function reportRollupResult(
  kc: KubeConfig,
  namespace: string,
  name: string,
  result: RollupStatus,
): Promise<void> {
  const api = kc.makeApiClient(CustomObjectsApi);
  await api.patchNamespacedCustomObject(
    {
      group: GROUP,
      version: VERSION,
      namespace,
      plural: PLURAL,
      name,
      body: { metadata: { annotations: { [LAST_ROLLUP_ANNOTATION]: lastRollupAnnotation(result) } } },
    },
    setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
  );
}

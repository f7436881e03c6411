import { KubeConfig, KubernetesObjectApi, PatchStrategy } from "@kubernetes/client-node";

/** Annotation on the AuctionPipeline that the operator reads into its status. */
export const LAST_ROLLUP_ANNOTATION = "gavel.dev/last-rollup";

export interface LastRollup {
  readonly day: string;
  readonly status: string;
  readonly finishedAt: string;
}

/** `namespace/name` -> parts; throws a usage-style message otherwise. */
export function parsePipelineRef(ref: string): { namespace: string; name: string } {
  const m = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/([a-z0-9]([-.a-z0-9]*[a-z0-9])?)$/.exec(ref);
  if (!m) throw new Error(`--pipeline-ref ${JSON.stringify(ref)} must be namespace/name, e.g. auctions/main`);
  return { namespace: m[1]!, name: m[3]! };
}

/** Merge-patches `gavel.dev/last-rollup` (JSON) on the AuctionPipeline. */
export async function annotateLastRollup(kubeconfig: string, ref: string, last: LastRollup): Promise<void> {
  const { namespace, name } = parsePipelineRef(ref);
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  const api = KubernetesObjectApi.makeApiClient(kc);
  await api.patch(
    {
      apiVersion: "gavel.dev/v1alpha1",
      kind: "AuctionPipeline",
      metadata: { namespace, name, annotations: { [LAST_ROLLUP_ANNOTATION]: JSON.stringify(last) } },
    },
    undefined,
    undefined,
    "gavel-rollup",
    undefined,
    PatchStrategy.MergePatch,
  );
}

import { KubeConfig, KubernetesObjectApi, PatchStrategy } from "@kubernetes/client-node";
import { envValue } from "../../api/env.ts";
import type { RollupStatus } from "../../api/v1alpha1/types.ts";
import type { RollupResult } from "./rollup.ts";

/**
 * How a rollup reports to the operator: the JSON annotation
 * `gavel.dev/last-rollup` (LAST_ROLLUP_ANNOTATION) on its AuctionPipeline,
 * which the operator copies into `status.lastRollup` (operator/controller/status.ts
 * parseLastRollup). Its value is a RollupStatus: `time` the run finished,
 * `result` Failed when any day failed (partial and skipped days count as
 * Succeeded, see `message`), `days` rebuilt oldest first, `message` one
 * clause per day that was not a plain success, or "ok". `day`, `status` and
 * `finishedAt` of the last day are added for people reading the annotation.
 */
export function lastRollup(
  results: readonly RollupResult[],
  finishedAt: Date,
): RollupStatus & { readonly day: string; readonly status: string; readonly finishedAt: string } {
  const last = results.at(-1);
  const notes = results
    .filter((r) => r.status !== "succeeded")
    .map((r) =>
      r.status === "failed"
        ? `${r.day} failed: ${(r.error ?? "").split("\n").slice(0, 3).join(" ")}`
        : `${r.day} ${r.status} (${r.openAuctions} open auctions)`,
    );
  const time = finishedAt.toISOString();
  return {
    time,
    result: results.some((r) => r.status === "failed") ? "Failed" : "Succeeded",
    days: results.map((r) => r.day).slice(0, 100),
    message: (notes.join("; ") || "ok").slice(0, 4000),
    day: last?.day ?? "",
    status: last?.status ?? "",
    finishedAt: time,
  };
}

/** `namespace/name` -> parts; throws otherwise. */
export function parsePipelineRef(ref: string): { namespace: string; name: string } {
  const m = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/([a-z0-9]([-.a-z0-9]*[a-z0-9])?)$/.exec(ref);
  if (!m) throw new Error(`--pipeline-ref ${JSON.stringify(ref)} must be namespace/name, e.g. auctions/main`);
  return { namespace: m[1]!, name: m[3]! };
}

/**
 * The pipeline to report to: `--pipeline-ref`, else, inside a pod the
 * operator made, POD_NAMESPACE + GAVEL_PIPELINE; else none.
 */
export function pipelineRefFrom(explicit: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  if (explicit) return explicit;
  const namespace = envValue("podNamespace", env);
  const pipeline = envValue("pipeline", env);
  return namespace && pipeline ? `${namespace}/${pipeline}` : undefined;
}

/**
 * Merge-patches one JSON annotation (`key`: LAST_ROLLUP_ANNOTATION,
 * FRAUD_MODEL_ANNOTATION) on the AuctionPipeline `ref`. Credentials: the
 * KUBECONFIG file when given, else the default chain (in a pod: the mounted
 * ServiceAccount token, which may get/patch only its own pipeline).
 */
export async function annotatePipeline(
  kubeconfig: string | KubeConfig | undefined,
  ref: string,
  key: string,
  value: object,
): Promise<void> {
  const { namespace, name } = parsePipelineRef(ref);
  let kc: KubeConfig;
  if (kubeconfig instanceof KubeConfig) kc = kubeconfig;
  else {
    kc = new KubeConfig();
    if (kubeconfig) kc.loadFromFile(kubeconfig);
    else kc.loadFromDefault();
  }
  const api = KubernetesObjectApi.makeApiClient(kc);
  await api.patch(
    {
      apiVersion: "gavel.dev/v1alpha1",
      kind: "AuctionPipeline",
      metadata: { namespace, name, annotations: { [key]: JSON.stringify(value) } },
    },
    undefined,
    undefined,
    "gavel-rollup",
    undefined,
    PatchStrategy.MergePatch,
  );
}

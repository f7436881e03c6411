import { KubeConfig, KubernetesObjectApi, PatchStrategy } from "@kubernetes/client-node";
import { LAST_ROLLUP_ANNOTATION, type RollupStatus } from "../../api/v1alpha1/types.ts";
import type { RollupResult } from "./rollup.ts";

/**
 * How a rollup reports to the operator: the JSON annotation
 * `gavel.dev/last-rollup` on its AuctionPipeline, which the operator copies
 * into `status.lastRollup` (operator/controller/status.ts parseLastRollup:
 * `time`, `result` Succeeded|Failed, `days`, `message`). `day`, `status` and
 * `finishedAt` of the last day are added for people reading the annotation.
 */
export interface LastRollup {
  /** When the run finished (RFC 3339). */
  readonly time: string;
  /** Failed when any day failed; partial and skipped days count as Succeeded (see message). */
  readonly result: "Succeeded" | "Failed";
  /** Days rebuilt, oldest first. */
  readonly days: readonly string[];
  /** One clause per day that was not a plain success, or "ok". */
  readonly message: string;
  readonly day: string;
  readonly status: string;
  readonly finishedAt: string;
}

/** The annotation value for a run's results (pure). */
export function lastRollup(results: readonly RollupResult[], finishedAt: Date): LastRollup {
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
  if (env.POD_NAMESPACE && env.GAVEL_PIPELINE) return `${env.POD_NAMESPACE}/${env.GAVEL_PIPELINE}`;
  return undefined;
}

/**
 * Merge-patches the annotation on the AuctionPipeline. Credentials: the
 * KUBECONFIG file when given, else the default chain (in a pod: the mounted
 * ServiceAccount token, which may get/patch only its own pipeline).
 */
export async function annotateLastRollup(
  kubeconfig: string | KubeConfig | undefined,
  ref: string,
  last: LastRollup | RollupStatus,
): Promise<void> {
  await annotatePipeline(kubeconfig, ref, LAST_ROLLUP_ANNOTATION, last);
}

/** Merge-patches one JSON annotation (`key`) on the AuctionPipeline `ref`, as annotateLastRollup. */
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

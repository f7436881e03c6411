/** `gavel operator`: wiring only (config, logger, manager, health, signals). */
import { AppsV1Api, KubeConfig, type V1OwnerReference } from "@kubernetes/client-node";
import { envValue } from "../api/env.ts";
import type { Logger } from "../lib/log.ts";
import { createLogger } from "../lib/log.ts";
import { startTracing } from "../lib/telemetry.ts";
import { operatorMetrics } from "../processors/runtime/instrument.ts";
import { Registry } from "../processors/runtime/metrics.ts";
import { Manager } from "./controller/manager.ts";
import { startHealthServer } from "./health.ts";

export interface OperatorCommandOptions {
  readonly namespace?: string;
  readonly leaseNamespace?: string;
  readonly leaseName: string;
  readonly leaseOwnerDeployment?: string;
  readonly leaseDurationSeconds: string;
  readonly healthPort: string;
  readonly resyncSeconds: string;
  readonly concurrency: string;
}

function positiveInt(name: string, v: string, min = 0): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min)
    throw new Error(`${name} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  return n;
}

/** KUBECONFIG when set, else in-cluster, else ~/.kube/config. */
export function loadKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  const file = envValue("kubeconfig");
  if (file) kc.loadFromFile(file);
  else kc.loadFromDefault();
  return kc;
}

/**
 * The owner reference for the Lease: the operator's own Deployment, read
 * once at start. Without it (not found, not allowed) the Lease has no owner
 * and outlives an uninstall; the operator runs anyway, saying why.
 */
async function leaseOwner(
  kc: KubeConfig,
  namespace: string,
  name: string | undefined,
  log: Logger,
): Promise<V1OwnerReference | undefined> {
  if (!name) return undefined;
  try {
    const d = await kc.makeApiClient(AppsV1Api).readNamespacedDeployment({ name, namespace });
    const uid = d.metadata?.uid;
    if (!uid) throw new Error("the Deployment has no uid");
    return { apiVersion: "apps/v1", kind: "Deployment", name, uid };
  } catch (err) {
    log.warn(
      { deployment: `${namespace}/${name}`, err: (err as Error).message },
      "--lease-owner-deployment: cannot read the Deployment; the Lease gets no owner and outlives an uninstall",
    );
    return undefined;
  }
}

export async function runOperatorCommand(opts: OperatorCommandOptions): Promise<void> {
  const log = createLogger("gavel-operator");
  const healthPort = positiveInt("--health-port", opts.healthPort);
  const leaseMs = positiveInt("--lease-duration-seconds", opts.leaseDurationSeconds, 3) * 1000;
  startTracing("gavel-operator");
  const registry = new Registry("gavel_", { serviceName: "gavel-operator" });
  const kubeConfig = loadKubeConfig();
  // The chart sets POD_NAMESPACE (downward API): the Lease lives beside the operator.
  const leaseNamespace = opts.leaseNamespace ?? envValue("podNamespace") ?? "default";
  const owner = await leaseOwner(kubeConfig, leaseNamespace, opts.leaseOwnerDeployment, log);
  const manager = new Manager({
    kubeConfig,
    log,
    metrics: operatorMetrics(registry),
    ...(opts.namespace ? { namespace: opts.namespace } : {}),
    leaseNamespace,
    leaseName: opts.leaseName,
    ...(owner ? { leaseOwner: owner } : {}),
    leaseDurationMs: leaseMs,
    renewDeadlineMs: Math.round((leaseMs * 2) / 3),
    retryPeriodMs: Math.round(leaseMs / 7.5),
    resyncMs: positiveInt("--resync-seconds", opts.resyncSeconds, 10) * 1000,
    concurrency: positiveInt("--concurrency", opts.concurrency, 1),
    onLostLeadership: () => {
      // Like controller-runtime: exit, and let Kubernetes restart us as a standby.
      log.error("lost leadership; exiting");
      process.exit(1);
    },
  });
  const health =
    healthPort > 0 ? await startHealthServer(manager, healthPort, "0.0.0.0", registry) : undefined;
  manager.start();
  log.info({ healthPort: health?.port, identity: manager.identity }, "operator started");
  await new Promise<void>((resolve) => {
    const shutdown = (signal: string) => {
      log.info({ signal }, "shutting down");
      resolve();
    };
    process.once("SIGTERM", shutdown);
    process.once("SIGINT", shutdown);
  });
  await manager.stop();
  health?.server.close();
  await registry.shutdown();
  log.info("stopped");
}

/**
 * Helpers for the operator's integration tests against the real
 * kube-apiserver of the test environment. That server runs no controllers,
 * no garbage collector and no kubelet, so tests play those roles where
 * needed: they mark Deployments available and KafkaTopics ready by writing
 * their status, as envtest users do.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  ApiextensionsV1Api,
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  KubernetesObjectApi,
} from "@kubernetes/client-node";
import { pino } from "pino";
import { afterEach, beforeAll } from "vitest";
import { auctionPipelineCrd, CRD_NAME } from "../../api/v1alpha1/crd.ts";
import { Manager, type ManagerOptions } from "../../operator/controller/manager.ts";

export function kubeConfig(): KubeConfig {
  const path = process.env.KUBECONFIG;
  if (!path) throw new Error("KUBECONFIG is not set: run 'gavel testenv up' (the kube service) first");
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  return kc;
}

export const kc = kubeConfig();
export const objects = KubernetesObjectApi.makeApiClient(kc);
export const core = kc.makeApiClient(CoreV1Api);
export const apps = kc.makeApiClient(AppsV1Api);
export const custom = kc.makeApiClient(CustomObjectsApi);

export const G = { group: "gavel.dev", version: "v1alpha1", plural: "auctionpipelines" } as const;

/** Install (server-side apply) the generated CRD and wait until it is established. */
export async function ensureCrd(): Promise<void> {
  // Through kubectl: client-node's typed serializer drops `x-kubernetes-*` keys of raw JSON schemas.
  const r = await kubectl(
    ["apply", "--server-side", "--force-conflicts", "--field-manager=gavel-tests", "-f", "-"],
    JSON.stringify(auctionPipelineCrd()),
  );
  if (r.code !== 0) throw new Error(`installing the CRD failed: ${r.out}`);
  const ext = kc.makeApiClient(ApiextensionsV1Api);
  await waitFor("CRD established", async () => {
    const crd = await ext.readCustomResourceDefinition({ name: CRD_NAME });
    return crd.status?.conditions?.some((c) => c.type === "Established" && c.status === "True")
      ? true
      : undefined;
  });
}

/** Run the real kubectl against the test API server; resolves with stdout+stderr and the exit code. */
export function kubectl(args: string[], stdin?: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = execFile("kubectl", args, { env: process.env, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
      resolve({ code, out: `${stdout}${stderr}` });
    });
    if (stdin !== undefined) child.stdin?.end(stdin);
  });
}

export function suffix(): string {
  return randomBytes(4).toString("hex");
}

/** A fresh namespace (never deleted: without the namespace controller it would stay Terminating). */
export async function createNamespace(prefix: string): Promise<string> {
  const name = `${prefix}-${suffix()}`;
  await core.createNamespace({ body: { metadata: { name, labels: { "gavel.dev/test": "operator" } } } });
  return name;
}

export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline)
      throw new Error(
        `timed out waiting for ${what}${lastErr ? `: ${(lastErr as Error).message.split("\n")[0]}` : ""}`,
      );
    await new Promise((r) => setTimeout(r, 150));
  }
}

const quietLog = pino({ level: process.env.GAVEL_TEST_LOG ?? "silent" });

/** An in-process operator watching one namespace, with short timings. */
export function startOperator(namespace: string, over: Partial<ManagerOptions> = {}): Manager {
  const m = new Manager({
    kubeConfig: kc,
    log: quietLog,
    namespace,
    leaseNamespace: namespace,
    leaseName: "gavel-operator",
    leaseDurationMs: 3000,
    renewDeadlineMs: 2000,
    retryPeriodMs: 300,
    resyncMs: 5000,
    baseDelayMs: 200,
    maxDelayMs: 2000,
    ...over,
  });
  m.start();
  return m;
}

/** What an operator test file gets from `operatorTests`. */
export interface OperatorTests {
  /** An operator as startOperator makes, stopped after the test. */
  operator(namespace: string, over?: Partial<ManagerOptions>): Manager;
  /** Stops an operator `operator` started, before the test ends. */
  stop(m: Manager): Promise<void>;
}

/**
 * The set-up every operator test file shares: the CRD installed before its
 * tests, and every operator a test starts stopped after it (a leftover one
 * would keep reconciling the next test's namespace's Lease and objects).
 */
export function operatorTests(): OperatorTests {
  const running: Manager[] = [];
  beforeAll(ensureCrd);
  afterEach(async () => {
    await Promise.all(running.splice(0).map((m) => m.stop()));
  });
  return {
    operator(namespace, over) {
      const m = startOperator(namespace, over);
      running.push(m);
      return m;
    },
    async stop(m) {
      await m.stop();
      running.splice(running.indexOf(m), 1);
    },
  };
}

export function pipeline(name: string, spec: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    apiVersion: "gavel.dev/v1alpha1",
    kind: "AuctionPipeline",
    metadata: { name },
    spec: {
      kafka: { clusterName: "test-cluster", bootstrapServers: "kafka:9092" },
      storage: {
        postgres: { secretRef: { name: "pg" } },
        s3: { bucket: "lake", credentialsSecretRef: { name: "s3" } },
      },
      ...spec,
    },
  };
}

// biome-ignore lint/suspicious/noExplicitAny: tests walk arbitrary manifests
export type Obj = any;

export async function createPipeline(namespace: string, body: Record<string, unknown>): Promise<Obj> {
  return custom.createNamespacedCustomObject({ ...G, namespace, body });
}

export async function getPipeline(namespace: string, name: string): Promise<Obj> {
  return custom.getNamespacedCustomObject({ ...G, namespace, name });
}

/** Merge-patch the pipeline's spec as a user would (`kubectl patch --type=merge`). */
export async function patchSpec(
  namespace: string,
  name: string,
  spec: Record<string, unknown>,
): Promise<Obj> {
  // Read-modify-replace like `kubectl edit`; the operator's status writes can win the race (409), so retry.
  for (let attempt = 0; ; attempt++) {
    const p = await getPipeline(namespace, name);
    const merged = mergeDeep(p.spec, spec);
    try {
      return await custom.replaceNamespacedCustomObject({
        ...G,
        namespace,
        name,
        body: { ...p, spec: merged },
      });
    } catch (err) {
      if ((err as { code?: number }).code !== 409 || attempt >= 5) throw err;
    }
  }
}

function mergeDeep(a: Obj, b: Obj): Obj {
  if (b === null) return undefined;
  if (typeof a !== "object" || a === null || Array.isArray(a) || typeof b !== "object" || Array.isArray(b))
    return b;
  const out: Obj = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const m = mergeDeep(a[k], v);
    if (m === undefined) delete out[k];
    else out[k] = m;
  }
  return out;
}

export async function list(apiVersion: string, kind: string, namespace: string): Promise<Obj[]> {
  const l = await objects.list(apiVersion, kind, namespace);
  return l.items as Obj[];
}

export async function read(
  apiVersion: string,
  kind: string,
  namespace: string,
  name: string,
): Promise<Obj | undefined> {
  try {
    return await objects.read({ apiVersion, kind, metadata: { name, namespace } });
  } catch (err) {
    if ((err as { code?: number }).code === 404) return undefined;
    throw err;
  }
}

/** Delete an object, as a user or a controller would. */
export async function remove(
  apiVersion: string,
  kind: string,
  namespace: string,
  name: string,
): Promise<void> {
  await objects.delete({ apiVersion, kind, metadata: { name, namespace } });
}

export function condition(p: Obj, type: string): Obj | undefined {
  return p?.status?.conditions?.find((c: Obj) => c.type === type);
}

/** Waits until the pipeline (which may not exist yet) satisfies `ready`, and returns it. */
export function pipelineWhen(
  namespace: string,
  name: string,
  what: string,
  ready: (p: Obj) => boolean,
  timeoutMs?: number,
): Promise<Obj> {
  return waitFor(
    what,
    async () => {
      const x = await getPipeline(namespace, name);
      return ready(x) ? x : undefined;
    },
    timeoutMs,
  );
}

/** Waits until the pipeline's TopicsReady is True, and returns it. */
export function topicsReady(namespace: string, name: string, what: string, timeoutMs?: number): Promise<Obj> {
  return pipelineWhen(
    namespace,
    name,
    what,
    (x) => condition(x, "TopicsReady")?.status === "True",
    timeoutMs,
  );
}

/**
 * `kubectl patch --type=merge` of the pipeline's spec: what a user sees when
 * the API server's validation (CEL) refuses a change.
 */
export function kubectlPatchSpec(
  namespace: string,
  name: string,
  spec: Record<string, unknown>,
): Promise<{ code: number; out: string }> {
  return kubectl([
    "patch",
    "auctionpipeline",
    name,
    "-n",
    namespace,
    "--type=merge",
    "-p",
    JSON.stringify({ spec }),
  ]);
}

/** A pipeline whose topics the operator creates itself through the Kafka admin API (provisioner gavel). */
export function gavelProvisioned(
  name: string,
  bootstrapServers: string,
  spec: Record<string, unknown> = {},
): Record<string, unknown> {
  const base = pipeline(name, spec) as { spec: Record<string, unknown> };
  base.spec.kafka = {
    bootstrapServers,
    authSecretRef: { name: "kafka-auth" },
    topics: { provisioner: "gavel" },
  };
  return base;
}

/** Play the Strimzi topic operator: set every KafkaTopic's Ready condition. */
export async function markTopicsReady(
  namespace: string,
  ready: "True" | "False" = "True",
  reason?: string,
  message?: string,
): Promise<void> {
  for (const t of await list("kafka.strimzi.io/v1", "KafkaTopic", namespace)) {
    await custom.replaceNamespacedCustomObjectStatus({
      group: "kafka.strimzi.io",
      version: "v1",
      plural: "kafkatopics",
      namespace,
      name: t.metadata.name,
      body: {
        ...t,
        status: {
          observedGeneration: t.metadata.generation,
          topicName: t.spec.topicName,
          conditions: [
            {
              type: "Ready",
              status: ready,
              lastTransitionTime: new Date().toISOString(),
              ...(reason ? { reason } : {}),
              ...(message ? { message } : {}),
            },
          ],
        },
      },
    });
  }
}

/** Play the Deployment controller: mark every Deployment available. */
export async function markDeploymentsAvailable(namespace: string): Promise<void> {
  const ds = await apps.listNamespacedDeployment({ namespace });
  for (const d of ds.items) {
    const replicas = d.spec?.replicas ?? 1;
    d.status = {
      observedGeneration: d.metadata?.generation,
      replicas,
      readyReplicas: replicas,
      availableReplicas: replicas,
      updatedReplicas: replicas,
      conditions: [
        {
          type: "Available",
          status: "True",
          reason: "MinimumReplicasAvailable",
          message: "test",
          lastTransitionTime: new Date(),
        },
      ],
    };
    await apps.replaceNamespacedDeploymentStatus({ name: d.metadata!.name!, namespace, body: d });
  }
}

export async function eventsFor(namespace: string, name: string): Promise<Obj[]> {
  const l = await core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${name}` });
  return l.items;
}

export { Manager };

import { CoreV1Api, CustomObjectsApi, KubeConfig, RbacAuthorizationV1Api } from "@kubernetes/client-node";
import { Kafka, logLevel } from "kafkajs";
import { describe, expect, it } from "vitest";
import { LAST_ROLLUP_ANNOTATION } from "../../api/v1alpha1/types.ts";
import { rbacManifests } from "../../operator/rbac.ts";
import { annotatePipeline } from "../../processors/rollup/annotate.ts";
import {
  condition,
  core,
  createNamespace,
  createPipeline,
  eventsFor,
  G,
  gavelProvisioned,
  getPipeline,
  kc,
  kubectl,
  markDeploymentsAvailable,
  markTopicsReady,
  type Obj,
  operatorTests,
  pipeline,
  read,
  suffix,
  topicsReady,
  waitFor,
} from "./operator-support.ts";

/** The provisioner never deletes topics: remove the ones a test pipeline made. */
async function deleteTopics(brokers: string, pipelineName: string): Promise<void> {
  const admin = new Kafka({
    clientId: "gavel-tests",
    brokers: [brokers],
    logLevel: logLevel.NOTHING,
  }).admin();
  await admin.connect();
  try {
    const mine = (await admin.listTopics()).filter((t) => t.startsWith(`${pipelineName}.`));
    if (mine.length > 0) await admin.deleteTopics({ topics: mine });
  } finally {
    await admin.disconnect();
  }
}

const { operator } = operatorTests();

/** A kubeconfig that authenticates as the ServiceAccount with a TokenRequest token. */
async function serviceAccountConfig(namespace: string, sa: string): Promise<KubeConfig> {
  const tr = await core.createNamespacedServiceAccountToken({
    name: sa,
    namespace,
    body: { spec: { audiences: [], expirationSeconds: 3600 } },
  });
  const token = tr.status?.token;
  if (!token) throw new Error("TokenRequest returned no token");
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error("no current cluster in KUBECONFIG");
  const out = new KubeConfig();
  out.loadFromOptions({
    clusters: [cluster],
    users: [{ name: sa, token }],
    contexts: [{ name: sa, cluster: cluster.name, user: sa, namespace }],
    currentContext: sa,
  });
  return out;
}

async function status(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 200;
  } catch (err) {
    return (err as { code?: number }).code ?? -1;
  }
}

describe("operator RBAC", () => {
  it("works with only its generated RBAC, and nothing outside it is allowed", async () => {
    const ns = await createNamespace("op-rbac");
    const name = `gavel-operator-${ns}`;
    const manifests = rbacManifests({ namespace: ns, name, serviceAccount: "gavel-operator" });
    const applied = await kubectl(
      ["apply", "--server-side", "--field-manager=gavel-tests", "-f", "-"],
      manifests.map((m) => JSON.stringify(m)).join("\n"),
    );
    expect(applied.code, applied.out).toBe(0);
    const saKc = await serviceAccountConfig(ns, "gavel-operator");

    const m = operator(ns, { kubeConfig: saKc, identity: "sa-operator" });
    await waitFor("leader (Lease via the leader-election Role)", async () => m.isLeader, 15_000);
    await createPipeline(ns, pipeline("rb"));
    // Children of every managed kind, including the rollup's Role (RBAC escalation check passes).
    for (const [apiVersion, kind, obj] of [
      ["kafka.strimzi.io/v1", "KafkaTopic", "rb-bids"],
      ["apps/v1", "Deployment", "rb-ingest"],
      ["autoscaling/v2", "HorizontalPodAutoscaler", "rb-ingest"],
      ["policy/v1", "PodDisruptionBudget", "rb-ingest"],
      ["v1", "Service", "rb-ingest"],
      ["v1", "ConfigMap", "rb-ingest"],
      ["v1", "ServiceAccount", "rb-gavel"],
      ["rbac.authorization.k8s.io/v1", "Role", "rb-rollup"],
      ["rbac.authorization.k8s.io/v1", "RoleBinding", "rb-rollup"],
      ["batch/v1", "CronJob", "rb-rollup"],
    ] as const) {
      await waitFor(`${kind}/${obj}`, () => read(apiVersion, kind, ns, obj), 20_000);
    }
    await markTopicsReady(ns);
    await markDeploymentsAvailable(ns);
    await waitFor(
      "Ready via the status subresource",
      async () => condition(await getPipeline(ns, "rb"), "Ready")?.status === "True",
    );
    expect((await eventsFor(ns, "rb")).some((e: Obj) => e.reason === "Created")).toBe(true);

    // The rollup's ServiceAccount may record its result on its own pipeline, and nothing else.
    const rollupKc = await serviceAccountConfig(ns, "rb-gavel");
    await annotatePipeline(rollupKc, `${ns}/rb`, LAST_ROLLUP_ANNOTATION, {
      time: "2026-11-22T00:20:00Z",
      result: "Failed",
      message: "dq check failed",
    });
    await waitFor(
      "lastRollup",
      async () => (await getPipeline(ns, "rb")).status?.lastRollup?.result === "Failed",
    );
    await createPipeline(ns, pipeline("other"));
    expect(
      await status(
        annotatePipeline(rollupKc, `${ns}/other`, LAST_ROLLUP_ANNOTATION, {
          time: "2026-11-22T00:20:00Z",
          result: "Succeeded",
        }),
      ),
    ).toBe(403);

    // The gavel topic provisioner reads the Kafka auth Secret by name (get only) and needs no KafkaTopics.
    const brokers = process.env.KAFKA_BOOTSTRAP_SERVERS ?? "";
    await core.createNamespacedSecret({
      namespace: ns,
      body: { metadata: { name: "kafka-auth" }, stringData: { KAFKA_TLS: "false" } },
    });
    const gavelName = `rbg-${suffix()}`;
    await createPipeline(
      ns,
      gavelProvisioned(gavelName, brokers, { topics: { partitions: 1, replicas: 1 } }),
    );
    try {
      const gpStatus = await topicsReady(
        ns,
        gavelName,
        "gavel-provisioned topics with only the generated RBAC",
        60_000,
      );
      expect(gpStatus.status.topicsReady).toBe("8/8");
    } finally {
      await deleteTopics(brokers, gavelName);
    }

    // Outside its RBAC: listing Secrets, spec updates, cluster-wide RBAC.
    const saCore = saKc.makeApiClient(CoreV1Api);
    expect(await status(saCore.listNamespacedSecret({ namespace: ns }))).toBe(403);
    expect(
      await status(
        saCore.createNamespacedPod({
          namespace: ns,
          body: { metadata: { name: "x" }, spec: { containers: [{ name: "x", image: "x" }] } },
        }),
      ),
    ).toBe(403);
    const saCustom = saKc.makeApiClient(CustomObjectsApi);
    const p = await getPipeline(ns, "rb");
    expect(
      await status(saCustom.replaceNamespacedCustomObject({ ...G, namespace: ns, name: "rb", body: p })),
    ).toBe(403);
    expect(
      await status(
        saKc
          .makeApiClient(RbacAuthorizationV1Api)
          .createClusterRole({ body: { metadata: { name: `x-${ns}` }, rules: [] } }),
      ),
    ).toBe(403);
  });
});

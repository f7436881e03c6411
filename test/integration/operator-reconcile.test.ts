import { describe, expect, it } from "vitest";
import { LAST_ROLLUP_ANNOTATION } from "../../api/v1alpha1/types.ts";
import { annotatePipeline } from "../../processors/rollup/annotate.ts";
import {
  condition,
  createNamespace,
  createPipeline,
  eventsFor,
  getPipeline,
  kc,
  list,
  markDeploymentsAvailable,
  markTopicsReady,
  type Obj,
  objects,
  operatorTests,
  patchSpec,
  pipeline,
  read,
  remove,
  waitFor,
} from "./operator-support.ts";

const { operator, stop } = operatorTests();

async function childCount(ns: string, apiVersion: string, kind: string): Promise<number> {
  return (await list(apiVersion, kind, ns)).length;
}

describe("operator reconcile", () => {
  it("creates every child with owner references and labels, then reports Ready", async () => {
    const ns = await createNamespace("op-create");
    operator(ns);
    const created = await createPipeline(ns, pipeline("demo"));
    const uid = created.metadata.uid;

    await waitFor(
      "8 KafkaTopics",
      async () => (await childCount(ns, "kafka.strimzi.io/v1", "KafkaTopic")) === 8,
    );
    await waitFor("CronJob", () => read("batch/v1", "CronJob", ns, "demo-rollup"));
    const kinds: [string, string, number][] = [
      ["apps/v1", "Deployment", 4],
      ["autoscaling/v2", "HorizontalPodAutoscaler", 4],
      ["policy/v1", "PodDisruptionBudget", 4],
      ["v1", "Service", 1],
      ["v1", "ConfigMap", 5],
      ["v1", "ServiceAccount", 1],
      ["rbac.authorization.k8s.io/v1", "Role", 1],
      ["rbac.authorization.k8s.io/v1", "RoleBinding", 1],
    ];
    for (const [apiVersion, kind, n] of kinds) {
      await waitFor(`${n} ${kind}`, async () => {
        const items = (await list(apiVersion, kind, ns)).filter(
          (o: Obj) => o.metadata.labels?.["gavel.dev/pipeline"] === "demo",
        );
        return items.length === n ? items : undefined;
      });
    }
    for (const [apiVersion, kind] of [["kafka.strimzi.io/v1", "KafkaTopic"], ...kinds] as [
      string,
      string,
    ][]) {
      for (const o of (await list(apiVersion, kind, ns)).filter(
        (x: Obj) => x.metadata.labels?.["gavel.dev/pipeline"],
      )) {
        expect(o.metadata.ownerReferences, `${kind}/${o.metadata.name}`).toEqual([
          expect.objectContaining({
            kind: "AuctionPipeline",
            name: "demo",
            uid,
            controller: true,
            blockOwnerDeletion: true,
          }),
        ]);
        expect(o.metadata.labels["app.kubernetes.io/managed-by"]).toBe("gavel-operator");
        expect(
          o.metadata.managedFields.some(
            (f: Obj) => f.manager === "gavel-operator" && f.operation === "Apply",
          ),
        ).toBe(true);
      }
    }
    const topic = await read("kafka.strimzi.io/v1", "KafkaTopic", ns, "demo-bids-accepted");
    expect(topic.metadata.labels["strimzi.io/cluster"]).toBe("test-cluster");
    expect(topic.spec).toMatchObject({ topicName: "demo.bids.accepted", partitions: 12, replicas: 3 });
    const hpa = await read("autoscaling/v2", "HorizontalPodAutoscaler", ns, "demo-bid-processor");
    expect(hpa.spec).toMatchObject({ minReplicas: 1, maxReplicas: 4 });
    const cj = await read("batch/v1", "CronJob", ns, "demo-rollup");
    expect(cj.spec).toMatchObject({
      schedule: "15 0 * * *",
      timeZone: "UTC",
      concurrencyPolicy: "Forbid",
      startingDeadlineSeconds: 600,
      suspend: false,
    });

    // Nothing ready yet: topics wait for Strimzi, Deployments for pods.
    let p = await waitFor("status", async () =>
      (await getPipeline(ns, "demo")).status?.conditions ? getPipeline(ns, "demo") : undefined,
    );
    expect(p.status.observedGeneration).toBe(p.metadata.generation);
    expect(condition(p, "Ready").status).toBe("False");
    expect(condition(p, "TopicsReady")).toMatchObject({
      status: "Unknown",
      reason: "WaitingForTopicOperator",
    });
    expect(condition(p, "RollupScheduled").status).toBe("True");

    await markTopicsReady(ns);
    await markDeploymentsAvailable(ns);
    p = await waitFor("Ready", async () => {
      const x = await getPipeline(ns, "demo");
      return condition(x, "Ready")?.status === "True" ? x : undefined;
    });
    expect(p.status).toMatchObject({ phase: "Ready", topicsReady: "8/8", processorsReady: "4/4" });
    expect(condition(p, "ProcessorsReady").status).toBe("True");
    expect(p.status.processors.find((x: Obj) => x.name === "bid-processor")).toMatchObject({
      maxReplicas: 4,
      availableReplicas: 1,
    });
    const reasons = (await eventsFor(ns, "demo")).map((e: Obj) => e.reason);
    expect(reasons).toContain("Created");

    // The rollup records its result as an annotation; status mirrors it.
    const last = { time: "2026-11-22T00:20:00Z", result: "Succeeded", days: ["2026-11-21"] };
    await annotatePipeline(kc, `${ns}/demo`, LAST_ROLLUP_ANNOTATION, {
      time: last.time,
      result: "Succeeded",
      days: last.days,
    });
    await waitFor("lastRollup", async () =>
      (await getPipeline(ns, "demo")).status?.lastRollup?.time === last.time ? true : undefined,
    );
  });

  it("updates: scale, add a topic, change the schedule", async () => {
    const ns = await createNamespace("op-update");
    operator(ns);
    await createPipeline(ns, pipeline("upd"));
    await waitFor("HPA", () => read("autoscaling/v2", "HorizontalPodAutoscaler", ns, "upd-bid-processor"));
    const gen1 = (await getPipeline(ns, "upd")).metadata.generation;

    await patchSpec(ns, "upd", {
      topics: { partitions: 24, extra: [{ name: "upd.notifications", partitions: 2 }] },
      processors: {
        ingest: {},
        bidProcessor: { minReplicas: 2, maxReplicas: 20 },
        silverWriter: { maxReplicas: 50 },
      },
      rollup: { schedule: "30 2 * * *", timeZone: "Europe/Berlin" },
    });
    await waitFor("HPA scaled", async () => {
      const h = await read("autoscaling/v2", "HorizontalPodAutoscaler", ns, "upd-bid-processor");
      return h?.spec.maxReplicas === 20 && h.spec.minReplicas === 2;
    });
    // silver-writer asks for 50 but is clamped to the 24 partitions of its topics. The operator
    // applies children one after another, so this HPA may land a moment after the bid-processor's.
    const silverMax = await waitFor("silver-writer HPA updated", async () => {
      const h = await read("autoscaling/v2", "HorizontalPodAutoscaler", ns, "upd-silver-writer");
      return h?.spec.maxReplicas !== 4 ? h?.spec.maxReplicas : undefined;
    });
    expect(silverMax).toBe(24);
    const extra = await waitFor("extra topic", async () =>
      (await list("kafka.strimzi.io/v1", "KafkaTopic", ns)).find(
        (t: Obj) => t.spec.topicName === "upd.notifications",
      ),
    );
    expect(extra.spec.partitions).toBe(2);
    expect((await read("kafka.strimzi.io/v1", "KafkaTopic", ns, "upd-bids")).spec.partitions).toBe(24);
    await waitFor("schedule", async () => {
      const cj = await read("batch/v1", "CronJob", ns, "upd-rollup");
      return cj.spec.schedule === "30 2 * * *" && cj.spec.timeZone === "Europe/Berlin";
    });
    const p = await waitFor("observedGeneration", async () => {
      const x = await getPipeline(ns, "upd");
      return x.status?.observedGeneration === x.metadata.generation ? x : undefined;
    });
    expect(p.metadata.generation).toBeGreaterThan(gen1);

    // Removing the extra topic deletes its KafkaTopic.
    await patchSpec(ns, "upd", { topics: { extra: [] } });
    await waitFor("extra topic pruned", async () =>
      (await list("kafka.strimzi.io/v1", "KafkaTopic", ns)).every(
        (t: Obj) => t.spec.topicName !== "upd.notifications",
      ),
    );
    expect(await childCount(ns, "kafka.strimzi.io/v1", "KafkaTopic")).toBe(8);
  });

  it("restores drift: an edited or deleted child comes back", async () => {
    const ns = await createNamespace("op-drift");
    operator(ns);
    await createPipeline(ns, pipeline("drift"));
    await waitFor("deployment", () => read("apps/v1", "Deployment", ns, "drift-ingest"));
    await waitFor("hpa", () => read("autoscaling/v2", "HorizontalPodAutoscaler", ns, "drift-ingest"));

    // Someone edits the image and a topic's partitions by hand (another field manager, an update).
    const d = await read("apps/v1", "Deployment", ns, "drift-ingest");
    d.spec.template.spec.containers[0].image = "evil:latest";
    await objects.replace(d);
    const t = await read("kafka.strimzi.io/v1", "KafkaTopic", ns, "drift-bids");
    t.spec.partitions = 99;
    await objects.replace(t);
    // ... and deletes the HPA and a ConfigMap.
    await remove("autoscaling/v2", "HorizontalPodAutoscaler", ns, "drift-ingest");
    await remove("v1", "ConfigMap", ns, "drift-bid-processor");

    await waitFor(
      "image restored",
      async () =>
        (await read("apps/v1", "Deployment", ns, "drift-ingest")).spec.template.spec.containers[0].image ===
        "ghcr.io/gavel-dev/gavel:0.1.0",
    );
    await waitFor(
      "partitions restored",
      async () => (await read("kafka.strimzi.io/v1", "KafkaTopic", ns, "drift-bids")).spec.partitions === 12,
    );
    await waitFor("HPA recreated", () =>
      read("autoscaling/v2", "HorizontalPodAutoscaler", ns, "drift-ingest"),
    );
    await waitFor("ConfigMap recreated", () => read("v1", "ConfigMap", ns, "drift-bid-processor"));
  });

  it("pauses and resumes without deleting anything", async () => {
    const ns = await createNamespace("op-pause");
    operator(ns);
    await createPipeline(ns, pipeline("pz"));
    await waitFor("hpa", () => read("autoscaling/v2", "HorizontalPodAutoscaler", ns, "pz-bid-processor"));
    await markTopicsReady(ns);

    await patchSpec(ns, "pz", { suspend: true });
    await waitFor("scaled to zero", async () => {
      const ds = await list("apps/v1", "Deployment", ns);
      return ds.length === 4 && ds.every((x: Obj) => x.spec.replicas === 0);
    });
    await waitFor(
      "HPAs removed",
      async () => (await childCount(ns, "autoscaling/v2", "HorizontalPodAutoscaler")) === 0,
    );
    expect((await read("batch/v1", "CronJob", ns, "pz-rollup")).spec.suspend).toBe(true);
    expect(await childCount(ns, "kafka.strimzi.io/v1", "KafkaTopic")).toBe(8);
    expect(await childCount(ns, "v1", "ConfigMap")).toBeGreaterThanOrEqual(5);
    const p = await waitFor("Suspended", async () => {
      const x = await getPipeline(ns, "pz");
      return x.status?.phase === "Suspended" ? x : undefined;
    });
    expect(condition(p, "Ready")).toMatchObject({ status: "False", reason: "Suspended" });
    expect(condition(p, "RollupScheduled")).toMatchObject({ status: "False", reason: "Suspended" });

    await patchSpec(ns, "pz", { suspend: false });
    await waitFor(
      "HPAs back",
      async () => (await childCount(ns, "autoscaling/v2", "HorizontalPodAutoscaler")) === 4,
    );
    await waitFor(
      "CronJob resumed",
      async () => (await read("batch/v1", "CronJob", ns, "pz-rollup")).spec.suspend === false,
    );
    // The operator releases `replicas` to the HPA: the API server defaults it back to 1, the HPA takes it from there.
    await waitFor("replicas released", async () =>
      (await list("apps/v1", "Deployment", ns)).every((x: Obj) => x.spec.replicas === 1),
    );
    await markDeploymentsAvailable(ns);
    await waitFor("Ready again", async () => (await getPipeline(ns, "pz")).status?.phase === "Ready");
    const reasons = (await eventsFor(ns, "pz")).map((e: Obj) => e.reason);
    expect(reasons).toEqual(expect.arrayContaining(["Suspended", "Resumed"]));
  });

  it("removes the children of a processor taken out of the spec", async () => {
    const ns = await createNamespace("op-remove");
    operator(ns);
    await createPipeline(ns, pipeline("rm"));
    await waitFor("silver-writer", () =>
      read("autoscaling/v2", "HorizontalPodAutoscaler", ns, "rm-silver-writer"),
    );
    await patchSpec(ns, "rm", { processors: { ingest: {}, bidProcessor: {}, bronzeArchiver: {} } });
    for (const [apiVersion, kind] of [
      ["apps/v1", "Deployment"],
      ["autoscaling/v2", "HorizontalPodAutoscaler"],
      ["policy/v1", "PodDisruptionBudget"],
      ["v1", "ConfigMap"],
    ] as const) {
      await waitFor(
        `${kind} rm-silver-writer pruned`,
        async () => (await read(apiVersion, kind, ns, "rm-silver-writer")) === undefined,
      );
    }
    expect(await read("apps/v1", "Deployment", ns, "rm-ingest")).toBeDefined();
    expect((await eventsFor(ns, "rm")).map((e: Obj) => e.reason)).toContain("Pruned");
  });

  it("mirrors a KafkaTopic's NotSupported condition in TopicsReady", async () => {
    const ns = await createNamespace("op-topics");
    operator(ns);
    await createPipeline(ns, pipeline("tp"));
    await waitFor("topics", async () => (await childCount(ns, "kafka.strimzi.io/v1", "KafkaTopic")) === 8);
    await markTopicsReady(ns, "False", "NotSupported", "Decreasing partitions not supported");
    const p = await waitFor("TopicsReady False", async () => {
      const x = await getPipeline(ns, "tp");
      const all = x.status?.topics?.length === 8 && x.status.topics.every((t: Obj) => t.ready === "False");
      return all && condition(x, "TopicsReady")?.reason === "NotSupported" ? x : undefined;
    });
    expect(condition(p, "TopicsReady").status).toBe("False");
    expect(condition(p, "TopicsReady").message).toMatch(/Decreasing partitions not supported/);
    expect(p.status.topics.every((t: Obj) => t.ready === "False" && t.reason === "NotSupported")).toBe(true);
  });

  it("reports a spec the API server accepts but cannot run (unknown time zone) as InvalidSpec", async () => {
    const ns = await createNamespace("op-invalid");
    operator(ns);
    await createPipeline(ns, pipeline("inv", { rollup: { timeZone: "Mars/Olympus_Mons" } }));
    const p = await waitFor("Failed", async () => {
      const x = await getPipeline(ns, "inv");
      return x.status?.phase === "Failed" ? x : undefined;
    });
    expect(condition(p, "Ready")).toMatchObject({ status: "False", reason: "InvalidSpec" });
    expect(condition(p, "Ready").message).toMatch(/spec.rollup.timeZone: unknown time zone/);
    expect(
      (await eventsFor(ns, "inv")).some((e: Obj) => e.type === "Warning" && e.reason === "InvalidSpec"),
    ).toBe(true);
    expect(await read("batch/v1", "CronJob", ns, "inv-rollup")).toBeUndefined();
    // Fixing the spec recovers.
    await patchSpec(ns, "inv", { rollup: { timeZone: "UTC" } });
    await waitFor("CronJob after fix", () => read("batch/v1", "CronJob", ns, "inv-rollup"));
  });
  it("deletes without a finalizer, even with no operator running; children are cleaned up", async () => {
    const ns = await createNamespace("op-delete");
    const m = operator(ns);
    await createPipeline(ns, pipeline("del"));
    await waitFor("CronJob", () => read("batch/v1", "CronJob", ns, "del-rollup"));
    await stop(m);
    const p = await getPipeline(ns, "del");
    expect(p.metadata.finalizers ?? []).toEqual([]);
    await remove("gavel.dev/v1alpha1", "AuctionPipeline", ns, "del");
    // Gone at once: nothing waits for the operator.
    await waitFor(
      "pipeline gone",
      async () => (await read("gavel.dev/v1alpha1", "AuctionPipeline", ns, "del")) === undefined,
      5000,
    );
    // This API server has no garbage collector; the operator removes what the pipeline controlled.
    operator(ns);
    await waitFor("children removed", async () => {
      const left = [
        ...(await list("apps/v1", "Deployment", ns)),
        ...(await list("kafka.strimzi.io/v1", "KafkaTopic", ns)),
        ...(await list("batch/v1", "CronJob", ns)),
      ];
      return left.length === 0;
    });
  });
});

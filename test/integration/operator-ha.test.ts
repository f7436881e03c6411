import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import {
  condition,
  createNamespace,
  createPipeline,
  getPipeline,
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

const { operator } = operatorTests();
const children: ChildProcess[] = [];

afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill("SIGKILL");
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

describe("operator replicas", () => {
  it("elects one leader among two; the standby takes over when the leader stops", async () => {
    const ns = await createNamespace("op-ha");
    const a = operator(ns, { identity: "replica-a" });
    await waitFor("a leads", async () => a.isLeader);
    const b = operator(ns, { identity: "replica-b" });
    await createPipeline(ns, pipeline("ha"));
    await waitFor("children", () => read("apps/v1", "Deployment", ns, "ha-ingest"));
    // Over several renew periods, never two leaders and b never acts.
    for (let i = 0; i < 10; i++) {
      expect([a.isLeader, b.isLeader]).toEqual([true, false]);
      await new Promise((r) => setTimeout(r, 150));
    }
    expect(b.reconciles).toBe(0);
    const lease = await read("coordination.k8s.io/v1", "Lease", ns, "gavel-operator");
    expect(lease.spec.holderIdentity).toBe("replica-a");

    await a.stop(); // graceful: releases the Lease
    await waitFor("b leads", async () => b.isLeader, 10_000);
    await patchSpec(ns, "ha", { rollup: { schedule: "0 4 * * *" } });
    await waitFor(
      "b reconciles",
      async () => (await read("batch/v1", "CronJob", ns, "ha-rollup")).spec.schedule === "0 4 * * *",
    );
    await waitFor("b counted its reconciles", async () => b.reconciles > 0);
  });

  it("converges after the operator process is killed mid-reconcile", async () => {
    const ns = await createNamespace("op-restart");
    const port = await freePort();
    // The Deployment the chart runs the operator as: it owns the Lease, so
    // the garbage collector deletes the Lease with it (helm uninstall).
    const owner = await objects.create({
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "gavel-operator", namespace: ns },
      spec: {
        selector: { matchLabels: { app: "op" } },
        template: {
          metadata: { labels: { app: "op" } },
          spec: { containers: [{ name: "op", image: "gavel:test" }] },
        },
      },
    });
    const proc = spawn(
      process.execPath,
      [
        "bin/gavel",
        "operator",
        "--namespace",
        ns,
        "--lease-namespace",
        ns,
        "--lease-owner-deployment",
        "gavel-operator",
        "--lease-duration-seconds",
        "4",
        "--health-port",
        String(port),
      ],
      { env: { ...process.env, LOG_LEVEL: "warn" }, stdio: ["ignore", "ignore", "pipe"] },
    );
    children.push(proc);
    let stderr = "";
    proc.stderr?.on("data", (d) => {
      stderr += String(d);
    });
    await waitFor(
      "health endpoints",
      async () => {
        const [h, r] = await Promise.all([
          fetch(`http://127.0.0.1:${port}/healthz`),
          fetch(`http://127.0.0.1:${port}/readyz`),
        ]);
        return h.status === 200 && r.status === 200;
      },
      30_000,
    ).catch((err) => {
      throw new Error(`${(err as Error).message}\noperator stderr:\n${stderr}`);
    });
    await createPipeline(ns, pipeline("rs"));
    // Kill it as soon as the first child appears: the reconcile is half done.
    await waitFor(
      "first child",
      async () => (await list("v1", "ServiceAccount", ns)).some((s: Obj) => s.metadata.name === "rs-gavel"),
      30_000,
    );
    proc.kill("SIGKILL");
    await new Promise((r) => proc.once("exit", r));
    const lease = await objects.read({
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: { name: "gavel-operator", namespace: ns },
    });
    expect(lease.metadata?.ownerReferences).toEqual([
      {
        apiVersion: "apps/v1",
        kind: "Deployment",
        name: "gavel-operator",
        uid: (owner.metadata as { uid?: string }).uid,
      },
    ]);
    // Whatever it managed to create, make the state worse and change the spec while no operator runs.
    const ds = await list("apps/v1", "Deployment", ns);
    for (const d of ds) await remove("apps/v1", "Deployment", ns, d.metadata.name);
    await patchSpec(ns, "rs", { topics: { partitions: 16 } });

    // A new instance (in-process) waits for the dead leader's Lease to expire, then converges.
    const m = operator(ns, { identity: "successor" });
    await waitFor("successor leads", async () => m.isLeader, 15_000);
    await waitFor(
      "all Deployments",
      async () => (await list("apps/v1", "Deployment", ns)).length === 4,
      15_000,
    );
    await waitFor("topics at 16 partitions", async () => {
      const ts = await list("kafka.strimzi.io/v1", "KafkaTopic", ns);
      return ts.length === 8 && ts.every((t: Obj) => t.spec.partitions === 16);
    });
    await markTopicsReady(ns);
    await markDeploymentsAvailable(ns);
    const p = await waitFor("Ready", async () => {
      const x = await getPipeline(ns, "rs");
      return condition(x, "Ready")?.status === "True" && x.status.observedGeneration === x.metadata.generation
        ? x
        : undefined;
    });
    expect(p.status.phase).toBe("Ready");
  });
});

import { execFile } from "node:child_process";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import {
  createNamespace,
  createPipeline,
  getPipeline,
  kubectl,
  type Obj,
  operatorTests,
  patchSpec,
  pipeline,
  read,
  waitFor,
} from "./operator-support.ts";

const { operator } = operatorTests();

async function rejection(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    const body = (err as { body?: unknown }).body;
    return typeof body === "string"
      ? (JSON.parse(body) as { message: string }).message
      : String((body as Obj)?.message ?? err);
  }
  throw new Error("expected the API server to reject the object");
}

function gavel(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ["bin/gavel", ...args], { maxBuffer: 10_000_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
    );
  });
}

describe("AuctionPipeline API", () => {
  it("rejects invalid specs with messages that say how to fix them", async () => {
    const ns = await createNamespace("op-api");
    const minMax = await rejection(
      createPipeline(ns, pipeline("a", { processors: { ingest: { minReplicas: 5, maxReplicas: 2 } } })),
    );
    expect(minMax).toContain("spec.processors.ingest.minReplicas");
    expect(minMax).toContain(
      "minReplicas must be less than or equal to maxReplicas: lower minReplicas or raise maxReplicas",
    );

    const consumers = await rejection(
      createPipeline(
        ns,
        pipeline("b", { topics: { partitions: 4 }, processors: { bidProcessor: { maxReplicas: 8 } } }),
      ),
    );
    expect(consumers).toContain("must not exceed the partitions of the bids topic");

    const copart = await rejection(
      createPipeline(
        ns,
        pipeline("cp", { topics: { partitions: 4, overrides: { bids: { partitions: 8 } } } }),
      ),
    );
    expect(copart).toContain("spec.topics.overrides: Invalid value");
    expect(copart).toContain("overrides of auctions and prices partitions must equal those of bids");
    expect(copart).toContain("need at least as many partitions as bids");

    const cron = await rejection(
      createPipeline(ns, pipeline("c", { rollup: { schedule: "every night", timeZone: "Europe Berlin" } })),
    );
    expect(cron).toContain("schedule must be a 5-field cron expression like '15 0 * * *'");
    expect(cron).toContain("timeZone must be an IANA time zone name");

    const bounds = await rejection(
      createPipeline(ns, pipeline("d", { topics: { replicas: 0 }, fraud: { quarantineThreshold: 2 } })),
    );
    expect(bounds).toMatch(/spec.topics.replicas: Invalid value: 0: .*greater than or equal to 1/);
    expect(bounds).toMatch(/spec.fraud.quarantineThreshold: Invalid value: 2: .*less than or equal to 1/);

    const model = await rejection(
      createPipeline(
        ns,
        pipeline("m", { fraud: { model: { activationDelaySeconds: 60, pollSeconds: 45 } } }),
      ),
    );
    expect(model).toContain("spec.fraud.model.activationDelaySeconds");
    expect(model).toContain(
      "activationDelaySeconds must be at least twice pollSeconds, so every replica has loaded a model before it becomes active",
    );

    const longName = await rejection(createPipeline(ns, pipeline("x".repeat(45))));
    expect(longName).toContain("at most 40 characters");

    // Partitions can only grow (a transition rule with oldSelf).
    await createPipeline(ns, pipeline("grow", { topics: { partitions: 8 } }));
    const shrink = await rejection(patchSpec(ns, "grow", { topics: { partitions: 4 } }));
    expect(shrink).toContain("partitions can only be increased");
    await patchSpec(ns, "grow", { topics: { partitions: 16 } });

    // And through the real kubectl, as a user sees it.
    const bad = `apiVersion: gavel.dev/v1alpha1
kind: AuctionPipeline
metadata: {name: bad}
spec:
  kafka: {clusterName: c, bootstrapServers: "k:9092"}
  storage: {postgres: {secretRef: {name: pg}}, s3: {bucket: lake}}
  processors: {silverWriter: {minReplicas: 3, maxReplicas: 1}}
  rollup: {concurrencyPolicy: Sometimes}
`;
    const r = await kubectl(["apply", "-n", ns, "-f", "-"], bad);
    expect(r.code).not.toBe(0);
    expect(r.out).toContain(
      'spec.rollup.concurrencyPolicy: Unsupported value: "Sometimes": supported values: "Forbid", "Replace", "Allow"',
    );
    const r2 = await kubectl(
      ["apply", "-n", ns, "-f", "-"],
      bad.replace("  rollup: {concurrencyPolicy: Sometimes}\n", ""),
    );
    expect(r2.code).not.toBe(0);
    expect(r2.out).toContain("minReplicas must be less than or equal to maxReplicas");
  });

  it("applies both examples with kubectl; synth prints exactly what the operator applies", async () => {
    const ns = await createNamespace("op-examples");
    operator(ns);
    const r = await kubectl([
      "apply",
      "-n",
      ns,
      "-f",
      "examples/pipeline-minimal.yaml",
      "-f",
      "examples/pipeline-full.yaml",
    ]);
    expect(r.code, r.out).toBe(0);

    const full = await waitFor("full example reconciled", async () => {
      const p = await getPipeline(ns, "auctions-eu");
      return p.status?.observedGeneration === p.metadata.generation ? p : undefined;
    });
    expect(full.status.topics).toHaveLength(9);
    const hpa = await read("autoscaling/v2", "HorizontalPodAutoscaler", ns, "auctions-eu-bid-processor");
    expect(hpa.spec).toMatchObject({ minReplicas: 2, maxReplicas: 48 });
    expect(hpa.spec.metrics[1].external.target.averageValue).toBe("5k");
    const dl = await read("kafka.strimzi.io/v1", "KafkaTopic", ns, "auctions-eu-bids-rejected");
    expect(dl.spec).toMatchObject({
      topicName: "auctions-eu.dead-letter",
      config: { "retention.ms": "2592000000", "min.insync.replicas": "2" },
    });
    const cj = await read("batch/v1", "CronJob", ns, "auctions-eu-rollup");
    expect(cj.spec).toMatchObject({
      schedule: "30 1 * * *",
      timeZone: "Europe/Berlin",
      startingDeadlineSeconds: 900,
    });
    const d = await read("apps/v1", "Deployment", ns, "auctions-eu-ingest");
    expect(d.spec.template.spec.containers[0].envFrom).toEqual([{ secretRef: { name: "gavel-kafka-auth" } }]);

    await waitFor(
      "minimal example reconciled",
      async () => (await getPipeline(ns, "demo")).status?.observedGeneration,
    );
    const text = await gavel(["synth", "-f", "examples/pipeline-minimal.yaml", "-n", ns]);
    const synthesized = parseAllDocuments(text).map((doc) => doc.toJS() as Obj);
    // 8 topics, 4 x (ConfigMap, Deployment, HPA, PDB), Service, ServiceAccount, rollup ConfigMap, Role, RoleBinding, CronJob
    expect(synthesized.length).toBe(30);
    const uid = (await getPipeline(ns, "demo")).metadata.uid;
    for (const want of synthesized) {
      const live = await read(want.apiVersion, want.kind, ns, want.metadata.name);
      expect(live, `${want.kind}/${want.metadata.name}`).toBeDefined();
      const { metadata, ...body } = want;
      // Quantities come back normalised ("5000" -> "5k"), everything else as applied.
      expect(JSON.parse(JSON.stringify(live)), `${want.kind}/${want.metadata.name}`).toMatchObject(body);
      expect(live.metadata.labels).toMatchObject(metadata.labels);
      expect(live.metadata.ownerReferences[0].uid).toBe(uid);
    }

    const table = await kubectl(["get", "auctionpipelines", "-n", ns]);
    expect(table.out.split("\n")[0]).toMatch(
      /NAME\s+READY\s+PHASE\s+TOPICS\s+PROCESSORS\s+LAST ROLLUP\s+AGE/,
    );
    const wide = await kubectl(["get", "auctionpipelines", "-n", ns, "-o", "wide"]);
    expect(wide.out.split("\n")[0]).toMatch(/PROVISIONER\s+LAST ROLLUP\s+FRAUD MODEL\s+AGE/);
    expect((await kubectl(["get", "ap", "-n", ns, "auctions-eu", "-o", "name"])).out.trim()).toBe(
      "auctionpipeline.gavel.dev/auctions-eu",
    );
  });

  it("kubectl explain shows the field descriptions", async () => {
    const explain = async (field: string) => {
      const r = await kubectl(["explain", field]);
      expect(r.code, r.out).toBe(0);
      return { out: r.out.replace(/\s+/g, " ") };
    };
    const spec = await explain("auctionpipeline.spec");
    expect(spec.out).toContain("Desired state of the pipeline.");
    expect(spec.out).toMatch(/suspend <boolean> Pause the pipeline: processors are scaled to zero/);
    expect(spec.out).toMatch(/kafka <Object> -required-/);
    const cp = await explain("auctionpipeline.spec.rollup.concurrencyPolicy");
    expect(cp.out).toContain("Forbid` (default) skips the new run");
    const parts = await explain("auctionpipeline.spec.topics.partitions");
    expect(parts.out).toContain("Partitions can only be increased");
  });
});

import type { V1Container, V1EnvVar, V1PodSpec } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { ENV, type EnvVar } from "../api/env.ts";
import { parsePipeline } from "../api/v1alpha1/pipeline.ts";
import { desired } from "./desired.ts";
import { envVar, secretEnvVar } from "./pod.ts";

/** A pipeline with every setting that adds a variable to a pod. */
const everyOption = parsePipeline({
  apiVersion: "gavel.dev/v1alpha1",
  kind: "AuctionPipeline",
  metadata: { name: "demo", namespace: "shop" },
  spec: {
    kafka: { clusterName: "c1", bootstrapServers: "k:9093", authSecretRef: { name: "kafka-auth" } },
    storage: {
      postgres: { secretRef: { name: "pg" } },
      s3: { bucket: "lake", endpoint: "http://s3:9000", credentialsSecretRef: { name: "s3" } },
    },
    ingestAuth: { apiKeysSecretRef: { name: "keys" } },
    observability: {
      otlpEndpoint: "http://otel:4318",
      tracesSampleRatio: 0.1,
      resourceAttributes: { "deployment.environment": "prod" },
    },
    fraud: { model: { train: true } },
  },
});

/** The containers of every pod the operator makes for the pipeline (processors and the rollup). */
function containers(): { workload: string; container: V1Container }[] {
  const out: { workload: string; container: V1Container }[] = [];
  for (const o of desired(everyOption)) {
    const spec = o.spec as
      | { template?: { spec: V1PodSpec }; jobTemplate?: { spec: { template: { spec: V1PodSpec } } } }
      | undefined;
    const pod = spec?.template?.spec ?? spec?.jobTemplate?.spec.template.spec;
    for (const container of pod?.containers ?? [])
      out.push({ workload: `${o.kind}/${o.metadata.name}`, container });
  }
  return out;
}

const byName = new Map<string, EnvVar>(Object.values(ENV).map((v: EnvVar) => [v.name, v]));

describe("the environment of the pipeline's pods", () => {
  const all = containers();

  it("covers the four processors and the rollup", () => {
    expect(all.map((c) => c.workload).sort()).toEqual([
      "CronJob/demo-rollup",
      "Deployment/demo-bid-processor",
      "Deployment/demo-bronze-archiver",
      "Deployment/demo-ingest",
      "Deployment/demo-silver-writer",
    ]);
  });

  it("holds only variables of api/env.ts, so the operator never writes a name the processes do not read", () => {
    for (const { workload, container } of all)
      for (const e of container.env ?? [])
        expect(byName.has(e.name), `${workload} sets ${e.name}, which api/env.ts does not list`).toBe(true);
    // The settings of `spec.kafka.authSecretRef` come whole from the Secret, as the KAFKA_* variables.
    expect(all.every(({ container }) => container.envFrom?.[0]?.secretRef?.name === "kafka-auth")).toBe(true);
  });

  it("sets a secret only from a Secret reference, and a Secret reference only for a secret", () => {
    for (const { workload, container } of all)
      for (const e of container.env ?? []) {
        const fromSecret = e.valueFrom?.secretKeyRef !== undefined;
        expect(fromSecret, `${workload} ${e.name}`).toBe(byName.get(e.name)?.secret === true);
        if (fromSecret) expect(e.value, `${workload} ${e.name}`).toBeUndefined();
      }
  });

  it("sets each variable once per container", () => {
    for (const { workload, container } of all) {
      const names = (container.env ?? []).map((e: V1EnvVar) => e.name);
      expect(new Set(names).size, workload).toBe(names.length);
    }
  });

  it("cannot write a secret as a plain value (a type error)", () => {
    // @ts-expect-error DATABASE_URL is a secret: only secretEnvVar may set it.
    const plain = () => envVar(ENV.databaseUrl, "postgres://u:p@h/db");
    // @ts-expect-error LOG_LEVEL is no secret: it has no business in a Secret.
    const secret = () => secretEnvVar(ENV.logLevel, "s", "k");
    expect([plain, secret]).toHaveLength(2);
  });
});

import { describe, expect, it } from "vitest";
import { parsePipeline } from "../api/v1alpha1/pipeline.ts";
import { desired, type KubeObject } from "./desired.ts";

const base = {
  apiVersion: "gavel.dev/v1alpha1",
  kind: "AuctionPipeline",
  metadata: { name: "demo", namespace: "shop" },
  spec: {
    kafka: { clusterName: "c1", bootstrapServers: "k:9092" },
    storage: {
      postgres: { secretRef: { name: "pg" } },
      s3: { bucket: "lake", credentialsSecretRef: { name: "s3" } },
    },
  },
};

// biome-ignore lint/suspicious/noExplicitAny: tests walk manifest JSON
type Any = any;
const find = (objs: KubeObject[], kind: string, name: string): Any => {
  const o = objs.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o)
    throw new Error(`no ${kind}/${name} in ${objs.map((x) => `${x.kind}/${x.metadata.name}`).join(", ")}`);
  return o;
};
const spec = (over: Record<string, unknown>) => parsePipeline({ ...base, spec: { ...base.spec, ...over } });

describe("desired", () => {
  it("builds every child with labels and namespace", () => {
    const objs = desired(parsePipeline(base));
    const kinds = objs.map((o) => o.kind);
    expect(kinds.filter((k) => k === "KafkaTopic")).toHaveLength(8);
    expect(kinds.filter((k) => k === "Deployment")).toHaveLength(4);
    expect(kinds.filter((k) => k === "HorizontalPodAutoscaler")).toHaveLength(4);
    expect(kinds.filter((k) => k === "Service")).toHaveLength(1);
    expect(kinds).toContain("CronJob");
    expect(kinds).toContain("ServiceAccount");
    for (const o of objs) {
      expect(o.metadata.namespace).toBe("shop");
      expect(o.metadata.labels?.["gavel.dev/pipeline"]).toBe("demo");
      expect(o.metadata.labels?.["app.kubernetes.io/managed-by"]).toBe("gavel-operator");
      expect(o.metadata.ownerReferences).toBeUndefined();
    }
    const names = objs.map((o) => `${o.kind}/${o.metadata.name}`);
    expect(new Set(names).size).toBe(names.length);
  });

  it("renders Strimzi KafkaTopics", () => {
    const t = find(desired(parsePipeline(base)), "KafkaTopic", "demo-bids-accepted");
    expect(t.apiVersion).toBe("kafka.strimzi.io/v1");
    expect(t.metadata.labels["strimzi.io/cluster"]).toBe("c1");
    expect(t.spec).toEqual({
      topicName: "demo.bids.accepted",
      partitions: 12,
      replicas: 3,
      config: { "cleanup.policy": "delete", "retention.ms": "604800000" },
    });
    expect(
      find(desired(parsePipeline(base)), "KafkaTopic", "demo-prices").spec.config["cleanup.policy"],
    ).toBe("compact");
  });

  it("renders processors securely, secrets by reference", () => {
    const objs = desired(parsePipeline(base));
    const d = find(objs, "Deployment", "demo-bid-processor");
    expect(d.spec.replicas).toBeUndefined(); // the HPA owns it
    const pod = d.spec.template.spec;
    const c = pod.containers[0];
    expect(c.command).toEqual(["gavel", "processor", "bid-processor", "-f", "/etc/gavel/pipeline.yaml"]);
    expect(c.securityContext).toMatchObject({
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
    });
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(c.readinessProbe.httpGet.path).toBe("/readyz");
    expect(c.livenessProbe.httpGet.path).toBe("/healthz");
    const env = Object.fromEntries(c.env.map((e: Any) => [e.name, e]));
    expect(env.DATABASE_URL.valueFrom.secretKeyRef).toEqual({ name: "pg", key: "url" });
    expect(env.AWS_SECRET_ACCESS_KEY.valueFrom.secretKeyRef.name).toBe("s3");
    expect(env.KAFKA_BOOTSTRAP_SERVERS.value).toBe("k:9092");
    expect(JSON.stringify(objs)).not.toMatch(/password/i);
    const cm = find(objs, "ConfigMap", "demo-bid-processor");
    expect(cm.data["pipeline.yaml"]).toContain("bidProcessor");
    expect(cm.data["pipeline.yaml"]).not.toContain("ingest");
    expect(d.spec.template.metadata.annotations["gavel.dev/config-hash"]).toMatch(/^[0-9a-f]{16}$/);
    const ingestEnv = Object.fromEntries(
      find(objs, "Deployment", "demo-ingest").spec.template.spec.containers[0].env.map((e: Any) => [
        e.name,
        e,
      ]),
    );
    expect(ingestEnv.GAVEL_API_KEYS.valueFrom.secretKeyRef).toEqual({
      name: "demo-ingest-keys",
      key: "keys",
    });
    expect(env.GAVEL_API_KEYS).toBeUndefined(); // only ingest sees the keys
    const custom = desired(spec({ ingestAuth: { apiKeysSecretRef: { name: "my-keys" } } }));
    expect(
      find(custom, "Deployment", "demo-ingest").spec.template.spec.containers[0].env.find(
        (e: Any) => e.name === "GAVEL_API_KEYS",
      ).valueFrom.secretKeyRef,
    ).toEqual({ name: "my-keys", key: "keys" });
    expect(find(objs, "Service", "demo-ingest").spec.ports[0]).toMatchObject({
      port: 80,
      targetPort: "http",
    });
  });

  it("clamps consumer HPAs to the partition count", () => {
    const objs = desired(
      spec({
        topics: { partitions: 3 },
        processors: {
          ingest: { maxReplicas: 10 },
          silverWriter: { maxReplicas: 10, autoscaling: { lagPerReplica: 500 } },
        },
      }),
    );
    expect(find(objs, "HorizontalPodAutoscaler", "demo-ingest").spec.maxReplicas).toBe(10);
    const hpa = find(objs, "HorizontalPodAutoscaler", "demo-silver-writer");
    expect(hpa.spec).toMatchObject({ minReplicas: 1, maxReplicas: 3 });
    expect(hpa.spec.metrics[1].external.target).toEqual({ type: "AverageValue", averageValue: "500" });
    expect(hpa.spec.behavior.scaleDown.stabilizationWindowSeconds).toBe(300);
    expect(objs.some((o) => o.metadata.name === "demo-bid-processor")).toBe(false);
  });

  it("renders the rollup CronJob", () => {
    const cj = find(
      desired(spec({ rollup: { schedule: "0 3 * * *", timeZone: "Europe/Berlin" } })),
      "CronJob",
      "demo-rollup",
    );
    expect(cj.spec).toMatchObject({
      schedule: "0 3 * * *",
      timeZone: "Europe/Berlin",
      concurrencyPolicy: "Forbid",
      startingDeadlineSeconds: 600,
      suspend: false,
    });
    const pod = cj.spec.jobTemplate.spec.template.spec;
    expect(pod.containers[0].command).toEqual([
      "gavel",
      "rollup",
      "-f",
      "/etc/gavel/pipeline.yaml",
      "--backfill-days",
      "2",
      "--train-fraud-model",
    ]);
    expect(pod.restartPolicy).toBe("Never");
    const noTraining = find(desired(spec({ fraud: { model: { train: false } } })), "CronJob", "demo-rollup");
    expect(noTraining.spec.jobTemplate.spec.template.spec.containers[0].command).not.toContain(
      "--train-fraud-model",
    );
  });

  it("pauses without deleting: replicas 0, no HPA, CronJob suspended", () => {
    const objs = desired(spec({ suspend: true }));
    expect(find(objs, "Deployment", "demo-ingest").spec.replicas).toBe(0);
    expect(objs.filter((o) => o.kind === "HorizontalPodAutoscaler")).toHaveLength(0);
    expect(find(objs, "CronJob", "demo-rollup").spec.suspend).toBe(true);
    expect(objs.filter((o) => o.kind === "KafkaTopic")).toHaveLength(8);
    // Config does not change with suspend, so resuming does not roll pods needlessly.
    const running = desired(parsePipeline(base));
    expect(find(objs, "ConfigMap", "demo-ingest")).toEqual(find(running, "ConfigMap", "demo-ingest"));
  });

  it("adds controller owner references when asked", () => {
    for (const o of desired(parsePipeline(base), { owner: { uid: "u-1" } }))
      expect(o.metadata.ownerReferences).toEqual([
        {
          apiVersion: "gavel.dev/v1alpha1",
          kind: "AuctionPipeline",
          name: "demo",
          uid: "u-1",
          controller: true,
          blockOwnerDeletion: true,
        },
      ]);
  });

  it("is deterministic", () => {
    expect(desired(parsePipeline(base))).toEqual(desired(parsePipeline(base)));
  });

  it("with the gavel provisioner renders no KafkaTopics and needs no Strimzi cluster", () => {
    const objs = desired(spec({ kafka: { bootstrapServers: "k:9092", topics: { provisioner: "gavel" } } }));
    expect(objs.filter((o) => o.kind === "KafkaTopic")).toHaveLength(0);
    expect(objs.filter((o) => o.kind === "Deployment")).toHaveLength(4);
    const cm = find(objs, "ConfigMap", "demo-bid-processor");
    expect(cm.data["pipeline.yaml"]).toContain("provisioner: gavel");
    expect(() =>
      desired({
        ...parsePipeline(base),
        spec: {
          ...parsePipeline(base).spec,
          kafka: { bootstrapServers: "k:9092", topics: { provisioner: "strimzi" } },
        },
      }),
    ).toThrow(/spec.kafka.clusterName is required with topics.provisioner strimzi/);
  });

  it("annotates processor pods for Prometheus scraping of /metrics on the http port", () => {
    for (const d of desired(parsePipeline(base)).filter((o) => o.kind === "Deployment")) {
      const tpl = (d as Any).spec.template;
      expect(tpl.metadata.annotations).toMatchObject({
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "8080",
        "prometheus.io/path": "/metrics",
      });
      expect(tpl.spec.containers[0].ports).toContainEqual({
        name: "http",
        containerPort: 8080,
        protocol: "TCP",
      });
    }
  });

  it("sets the OTEL_* variables from spec.observability", () => {
    const envOf = (objs: KubeObject[], kind: string, name: string): Record<string, string> => {
      const o = find(objs, kind, name);
      const pod = kind === "CronJob" ? o.spec.jobTemplate.spec.template.spec : o.spec.template.spec;
      return Object.fromEntries(pod.containers[0].env.map((e: Any) => [e.name, e.value]));
    };
    const plain = envOf(desired(parsePipeline(base)), "Deployment", "demo-bid-processor");
    expect(plain.OTEL_SERVICE_NAME).toBe("gavel-bid-processor");
    expect(plain.OTEL_RESOURCE_ATTRIBUTES).toBe(
      "gavel.pipeline=demo,k8s.namespace.name=shop,k8s.deployment.name=demo-bid-processor,k8s.pod.name=$(POD_NAME)",
    );
    expect(plain.OTEL_EXPORTER_OTLP_ENDPOINT).toBeUndefined();
    expect(plain.OTEL_TRACES_SAMPLER).toBeUndefined();

    const objs = desired(
      spec({
        observability: {
          otlpEndpoint: "http://otel-collector.observability:4318",
          tracesSampleRatio: 0.01,
          resourceAttributes: { "deployment.environment": "prod" },
        },
      }),
    );
    const env = envOf(objs, "Deployment", "demo-ingest");
    expect(env).toMatchObject({
      OTEL_SERVICE_NAME: "gavel-ingest",
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://otel-collector.observability:4318",
      OTEL_TRACES_SAMPLER: "parentbased_traceidratio",
      OTEL_TRACES_SAMPLER_ARG: "0.01",
    });
    expect(env.OTEL_RESOURCE_ATTRIBUTES).toMatch(/,deployment.environment=prod$/);
    const rollup = envOf(objs, "CronJob", "demo-rollup");
    expect(rollup.OTEL_SERVICE_NAME).toBe("gavel-rollup");
    expect(rollup.OTEL_RESOURCE_ATTRIBUTES).toContain("k8s.cronjob.name=demo-rollup");
    // POD_NAME comes first, so Kubernetes expands $(POD_NAME).
    const names = find(objs, "Deployment", "demo-ingest").spec.template.spec.containers[0].env.map(
      (e: Any) => e.name,
    );
    expect(names.indexOf("POD_NAME")).toBeLessThan(names.indexOf("OTEL_RESOURCE_ATTRIBUTES"));
    // Telemetry settings reach pods as env, not through the rendered config (no restarts of unrelated config).
    expect(find(objs, "ConfigMap", "demo-ingest")).toEqual(
      find(desired(spec({})), "ConfigMap", "demo-ingest"),
    );
  });

  it("targets the lag metric and never lets an HPA exceed the partitions it consumes", () => {
    const objs = desired(
      spec({
        topics: { partitions: 6 },
        processors: {
          bidProcessor: { maxReplicas: 6, autoscaling: { lagPerReplica: 1000 } },
          bronzeArchiver: { maxReplicas: 50 },
        },
      }),
    );
    const hpa = find(objs, "HorizontalPodAutoscaler", "demo-bid-processor");
    expect(hpa.spec.maxReplicas).toBe(6);
    expect(hpa.spec.metrics[1].external).toEqual({
      metric: {
        name: "gavel_consumer_lag",
        selector: { matchLabels: { pipeline: "demo", processor: "bid-processor" } },
      },
      target: { type: "AverageValue", averageValue: "1000" },
    });
    expect(find(objs, "HorizontalPodAutoscaler", "demo-bronze-archiver").spec.maxReplicas).toBe(6);
  });
});

import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { LAG_METRIC } from "../../cdk8s/autoscaler.ts";
import { find, type Manifest, parseManifests, REPO, run } from "../chart/helm.ts";

// docs/quickstart.md cannot run here (no Docker, no internet). What can be
// checked is checked: its files and names agree with each other and with
// examples/pipeline-full.yaml, the plain manifests are accepted by the real
// kube-apiserver, the S3 server runs with its manifest's arguments, and its
// curl commands are accepted by a real ingest on the test environment's Kafka.

const QS = join(REPO, "deploy", "quickstart");
const suffix = randomUUID().slice(0, 8);
let doc = "";
let pipeline: Manifest = {};
const qs: Record<string, Manifest[]> = {};

beforeAll(async () => {
  doc = await readFile(join(REPO, "docs", "quickstart.md"), "utf8");
  pipeline = parse(await readFile(join(REPO, "examples", "pipeline-full.yaml"), "utf8"));
  for (const f of await readdir(QS)) qs[f] = parseManifests(await readFile(join(QS, f), "utf8"));
});

/** The bash blocks of the doc, joined. */
const commands = () => [...doc.matchAll(/```bash\n([\s\S]*?)```/g)].map((m) => m[1]).join("\n");

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === "object" && addr ? addr.port : 0));
    });
  });
}

async function waitHttp(url: string, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > until) throw new Error(`${url} not ready after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe("files and names of the quick start agree", () => {
  it("every repository path the doc uses exists, and every deploy/quickstart file is used", async () => {
    const paths = new Set(
      [
        ...doc.matchAll(/\b((?:deploy|charts|examples|scripts)\/[\w./-]+|kind-config\.yaml|Dockerfile)\b/g),
      ].map((m) => m[1]!.replace(/[.]$/, "")),
    );
    for (const p of paths) expect(existsSync(join(REPO, p)), p).toBe(true);
    for (const f of await readdir(QS)) expect(commands(), f).toContain(`deploy/quickstart/${f}`);
  });

  it("every bash block of the doc is valid bash (bash -n)", () => {
    const blocks = [...doc.matchAll(/```bash\n([\s\S]*?)```/g)].map((m) => m[1]!);
    expect(blocks.length).toBeGreaterThanOrEqual(10);
    for (const b of blocks) {
      const r = run("bash", ["-n", "-c", b.replace(/^> ?/gm, "")]);
      expect(r.stderr, b).toBe("");
    }
  });

  it("the Prometheus metric names of the doc are the ones the code registers", async () => {
    // The shared instruments: business metrics (instrument.ts) and the consumers' batch metrics (batch-telemetry.ts).
    const runtime = join(REPO, "processors", "runtime");
    const src = (
      await Promise.all(
        ["instrument.ts", "batch-telemetry.ts"].map((f) => readFile(join(runtime, f), "utf8")),
      )
    ).join("\n");
    const names = new Set([...doc.matchAll(/\bgavel_([a-z_]+)/g)].map((m) => m[1]!));
    // the HPA's external metric is served by a metrics adapter under the autoscaler's name
    names.delete(LAG_METRIC.replace(/^gavel_/, ""));
    expect(names.size).toBeGreaterThanOrEqual(4);
    for (const n of names) expect(src, `gavel_${n}`).toContain(`"${n}"`);
  });

  it("Grafana provides every data source uid the chart's dashboards use", async () => {
    const provided = new Set(
      qs["grafana-values.yaml"]![0]!.datasources["datasources.yaml"].datasources.map((d: Manifest) => d.uid),
    );
    const dir = join(REPO, "charts", "gavel", "files", "dashboards");
    const used = new Set<string>();
    const walk = (node: unknown): void => {
      if (Array.isArray(node)) node.forEach(walk);
      else if (node && typeof node === "object") {
        const ds = (node as Manifest).datasource;
        if (ds && typeof ds === "object" && typeof ds.uid === "string" && !ds.uid.startsWith("$"))
          used.add(ds.uid);
        Object.values(node).forEach(walk);
      }
    };
    for (const f of (await readdir(dir)).filter((f) => f.endsWith(".json")))
      walk(JSON.parse(await readFile(join(dir, f), "utf8")));
    expect(used.size).toBeGreaterThan(0);
    for (const uid of used) expect(provided, uid).toContain(uid);
  });

  it("kind-config.yaml: 1 control plane + 2 workers, host ports for every NodePort the doc uses", async () => {
    const kind = parse(await readFile(join(REPO, "kind-config.yaml"), "utf8"));
    expect(kind.nodes.map((n: Manifest) => n.role)).toEqual(["control-plane", "worker", "worker"]);
    const mapped = new Map<number, number>(
      kind.nodes[0].extraPortMappings.map((m: Manifest) => [m.containerPort, m.hostPort]),
    );
    const ingest = find(qs["ingest-nodeport.yaml"]!, "Service");
    expect(mapped.get(ingest.spec.ports[0].nodePort)).toBe(8080);
    expect(mapped.get(qs["grafana-values.yaml"]![0]!.service.nodePort)).toBe(3000);
    expect(mapped.get(qs["prometheus-values.yaml"]![0]!.server.service.nodePort)).toBe(9090);
    expect(doc).toContain("http://127.0.0.1:8080");
    expect(doc).toContain("http://127.0.0.1:3000");
    expect(doc).toContain("http://127.0.0.1:9090");
  });

  it("Kafka: cluster name, bootstrap listener and replication fit examples/pipeline-full.yaml", () => {
    const docs = qs["kafka.yaml"]!;
    const kafka = find(docs, "Kafka");
    const pool = find(docs, "KafkaNodePool");
    for (const d of docs) expect(d.apiVersion).toBe("kafka.strimzi.io/v1");
    expect(pool.metadata.labels["strimzi.io/cluster"]).toBe(kafka.metadata.name);
    expect(pool.spec.roles.sort()).toEqual(["broker", "controller"]);
    expect(pipeline.spec.kafka.clusterName).toBe(kafka.metadata.name);
    const [host, port] = pipeline.spec.kafka.bootstrapServers.split(":");
    expect(host).toBe(`${kafka.metadata.name}-kafka-bootstrap.kafka`);
    const listener = kafka.spec.kafka.listeners.find((l: Manifest) => l.port === Number(port));
    expect(listener).toMatchObject({ tls: true, authentication: { type: "scram-sha-512" } });
    expect(pool.spec.replicas).toBeGreaterThanOrEqual(pipeline.spec.topics.replicas);
    expect(Number(pipeline.spec.topics.config["min.insync.replicas"])).toBeLessThan(pool.spec.replicas);
    // KafkaTopics live next to the pipeline (namespace default): the Topic Operator must watch it
    expect(kafka.spec.entityOperator.topicOperator.watchedNamespace).toBe("default");
    expect(qs["strimzi-values.yaml"]![0]!.watchNamespaces).toContain("default");
    expect(find(docs, "KafkaUser").spec.authentication.type).toBe("scram-sha-512");
  });

  it("storage and Secrets: the names the pipeline references are the ones the doc creates", () => {
    const s = pipeline.spec.storage;
    const svc = find(qs["s3-versitygw.yaml"]!, "Service");
    expect(s.s3.endpoint).toBe(`http://${svc.metadata.name}.storage:${svc.spec.ports[0].port}`);
    const gw = find(qs["s3-versitygw.yaml"]!, "Deployment").spec.template.spec.containers[0];
    expect(gw.env.find((e: Manifest) => e.name === "VGW_REGION").value).toBe(s.s3.region);
    expect(commands()).toContain(`s3 mb s3://${s.s3.bucket}`);
    const cmds = commands();
    const created = (name: string) => new RegExp(`create secret generic ${name} \\\\?\\n?\\s*--from-literal`);
    expect(cmds).toMatch(created(s.postgres.secretRef.name));
    expect(cmds).toContain(`--from-literal=${s.postgres.secretRef.key ?? "url"}=`);
    expect(cmds).toMatch(created(s.s3.credentialsSecretRef.name));
    expect(cmds).toContain(`--from-literal=${s.s3.credentialsSecretRef.accessKeyIdKey}=`);
    expect(cmds).toContain(`--from-literal=${s.s3.credentialsSecretRef.secretAccessKeyKey}=`);
    expect(cmds).toMatch(created(pipeline.spec.kafka.authSecretRef.name));
    for (const k of [
      "KAFKA_SASL_MECHANISM",
      "KAFKA_SASL_USERNAME",
      "KAFKA_SASL_PASSWORD",
      "KAFKA_TLS",
      "KAFKA_TLS_CA",
    ])
      expect(cmds).toContain(`--from-literal=${k}=`);
    const pg = find(qs["postgres.yaml"]!, "Cluster");
    expect(cmds).toContain(`@${pg.metadata.name}-rw.storage.svc:5432/${pg.spec.bootstrap.initdb.database}`);
    // the image the pipeline runs is the one the doc builds and loads into kind
    expect(cmds).toContain(`docker build -t ${pipeline.spec.image} .`);
    expect(cmds).toContain(`kind load docker-image ${pipeline.spec.image} --name gavel`);
    expect(cmds).toContain("kubectl apply -f examples/pipeline-full.yaml");
    expect(cmds).toMatch(/helm install gavel charts\/gavel /);
  });

  it("the ingest NodePort selects the pods of the operator's ingest Deployment (gavel synth)", () => {
    const r = run(process.execPath, [
      join(REPO, "bin", "gavel"),
      "synth",
      "-f",
      join(REPO, "examples/pipeline-full.yaml"),
    ]);
    expect(r.status, r.stderr).toBe(0);
    const synth = parseManifests(r.stdout);
    const dep = find(synth, "Deployment", `${pipeline.metadata.name}-ingest`);
    const svc = find(qs["ingest-nodeport.yaml"]!, "Service");
    expect(svc.spec.selector).toEqual(dep.spec.selector.matchLabels);
    const port = dep.spec.template.spec.containers[0].ports.find(
      (p: Manifest) => p.name === svc.spec.ports[0].targetPort,
    );
    expect(port?.containerPort).toBe(8080);
    // The API keys reach ingest through spec.ingestAuth: the Secret the doc creates, by reference.
    const keys = dep.spec.template.spec.containers[0].env.find((e: Manifest) => e.name === "GAVEL_API_KEYS");
    expect(keys.valueFrom.secretKeyRef).toEqual({ name: "gavel-ingest-keys", key: "keys" });
    expect(commands()).toContain(
      'kubectl create secret generic gavel-ingest-keys --from-literal=keys="$GAVEL_API_KEY"',
    );
    expect(commands()).toContain(`cronjob/${find(synth, "CronJob").metadata.name}`);
  });
});

describe("plain manifests on the real kube-apiserver", () => {
  const ns = `qs-${suffix}`;
  beforeAll(() => {
    expect(run("kubectl", ["create", "namespace", ns]).status).toBe(0);
  });
  afterAll(() => {
    run("kubectl", ["delete", "namespace", ns, "--wait=false"]);
  });

  for (const f of ["s3-versitygw.yaml", "ingest-nodeport.yaml"]) {
    it(`${f}: kubectl apply --dry-run=server`, () => {
      const r = run("kubectl", ["apply", "--dry-run=server", "-n", ns, "-f", join(QS, f)]);
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
      expect(r.stdout.trim().split("\n")).toHaveLength(qs[f]!.length);
    });
  }
});

describe("the S3 server with its manifest's arguments", () => {
  let proc: ChildProcess | undefined;
  let dir = "";
  afterAll(async () => {
    proc?.kill("SIGTERM");
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("starts, accepts the pipeline's region and bucket, stores and returns an object", async () => {
    const cache = process.env.GAVEL_CACHE ?? join(homedir(), ".cache", "gavel");
    const bin = (await readdir(join(cache, "bin"))).find((f) => f.startsWith("versitygw-"));
    expect(bin, "versitygw is built by the test environment").toBeDefined();
    dir = await mkdtemp(join(tmpdir(), "gavel-qs-s3-"));
    const dep = find(qs["s3-versitygw.yaml"]!, "Deployment").spec.template.spec;
    const init = dep.initContainers[0].command as string[];
    const sub = (s: string) => s.replaceAll("/data", dir);
    expect(run("sh", init.slice(1).map(sub)).status).toBe(0);
    const port = await freePort();
    const c = dep.containers[0];
    const args = (c.args as string[]).map((a) => (a === ":9000" ? `127.0.0.1:${port}` : sub(a)));
    const env = Object.fromEntries(c.env.map((e: Manifest) => [e.name, e.value]));
    const secret = randomUUID();
    proc = spawn(join(cache, "bin", bin!), args, {
      env: { ...process.env, ...env, ROOT_ACCESS_KEY: "gavel", ROOT_SECRET_KEY: secret },
      stdio: "ignore",
    });
    const s3 = new S3Client({
      endpoint: `http://127.0.0.1:${port}`,
      region: pipeline.spec.storage.s3.region,
      forcePathStyle: true,
      credentials: { accessKeyId: "gavel", secretAccessKey: secret },
    });
    const Bucket = pipeline.spec.storage.s3.bucket;
    for (let i = 0; ; i++) {
      try {
        await s3.send(new CreateBucketCommand({ Bucket }));
        break;
      } catch (err) {
        if (i > 80) throw err;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    const Key = `${pipeline.spec.storage.s3.prefix}bronze/hello.ndjson`;
    await s3.send(new PutObjectCommand({ Bucket, Key, Body: '{"ok":true}\n' }));
    const got = await s3.send(new GetObjectCommand({ Bucket, Key }));
    expect(await got.Body?.transformToString()).toBe('{"ok":true}\n');
    s3.destroy();
  });
});

describe("step 9's curl commands against a real ingest", () => {
  let ingest: ChildProcess | undefined;
  let dir = "";
  let logs = "";
  const key = `qs-${randomUUID()}`;
  let url = "";

  beforeAll(async () => {
    const name = `qs${suffix}`;
    const p = structuredClone(pipeline);
    p.metadata.name = name;
    // one broker in the test environment; unique topic names
    p.spec.topics = {
      partitions: 3,
      replicas: 1,
      overrides: { bidsRejected: { name: `${name}.dead-letter` } },
    };
    for (const proc of Object.values(p.spec.processors) as Manifest[])
      proc.maxReplicas = Math.min(proc.maxReplicas ?? 3, 3);
    dir = await mkdtemp(join(tmpdir(), "gavel-qs-"));
    const file = join(dir, "pipeline.json");
    await writeFile(file, JSON.stringify(p));
    const gavel = join(REPO, "bin", "gavel");
    const topics = run(process.execPath, [gavel, "topics", "apply", "-f", file], undefined, 120_000);
    expect(topics.status, `gavel topics apply failed:\n${topics.stderr.slice(-3000)}`).toBe(0);
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    ingest = spawn(process.execPath, [gavel, "processor", "ingest", "-f", file], {
      env: {
        ...process.env,
        GAVEL_API_KEYS: key,
        GAVEL_HTTP_PORT: String(port),
        GAVEL_HTTP_HOST: "127.0.0.1",
      },
      stdio: ["ignore", "ignore", "pipe"],
    });
    ingest.stderr?.on("data", (b: Buffer) => {
      logs += b.toString();
    });
    await waitHttp(`${url}/readyz`).catch((err) => {
      throw new Error(`${err}\n${logs.slice(-2000)}`);
    });
  });

  afterAll(async () => {
    ingest?.kill("SIGTERM");
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("every request of the block is accepted (202 after the broker's ack)", () => {
    const block = doc.match(/<!-- quickstart:send-bids[^>]*-->\n```bash\n([\s\S]*?)```/)?.[1];
    expect(block).toBeDefined();
    const r = spawnSyncBash(block!, { INGEST: url, GAVEL_API_KEY: key });
    expect(r.status, `${r.stderr}\n${logs.slice(-2000)}`).toBe(0);
    const replies = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(replies).toHaveLength(5);
    expect(replies[0]).toMatchObject({ user_id: "u-seller-1" });
    expect(replies[2]).toMatchObject({ auction_id: "a-1001" });
    for (const bid of replies.slice(3)) expect(JSON.stringify(bid)).toMatch(/bid_id/);
  });

  it("and a wrong key is refused (the block really authenticates)", () => {
    const r = spawnSyncBash(
      `curl -sS -o /dev/null -w '%{http_code}' -X POST "$INGEST/v1/users" -H "Authorization: Bearer wrong-key-000" -H 'Content-Type: application/json' -d '{}'`,
      { INGEST: url },
    );
    expect(r.stdout).toBe("401");
  });
});

function spawnSyncBash(script: string, env: Record<string, string>) {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    return run("bash", ["-euo", "pipefail", "-c", script]);
  } finally {
    for (const k of Object.keys(env)) if (saved[k] === undefined) delete process.env[k];
    Object.assign(process.env, saved);
  }
}

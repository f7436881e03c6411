import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { kafkaAnswers } from "../env/services.ts";
import { readEnvFile, repoRoot } from "../env/testenv.ts";

/**
 * `gavel cluster`: drives scripts/cluster/*.sh (the node itself is plumbing
 * best said in shell: namespaces, mounts, daemons) and does in TypeScript what
 * needs the project's clients (S3 bucket, Kafka readiness, Secrets from a
 * pipeline file). docs/local-cluster.md explains the design.
 */

const repo = repoRoot();
const scripts = join(repo, "scripts", "cluster");
export const clusterDir = (): string => process.env.GAVEL_CLUSTER_DIR ?? join(repo, ".testenv", "cluster");
const clusterEnvFile = (): string => join(clusterDir(), "env");

function progress(msg: string): void {
  process.stderr.write(`[cluster] ${msg}\n`);
}

function sh(script: string, args: string[] = []): void {
  const r = spawnSync("bash", [join(scripts, script), ...args], { stdio: ["ignore", "inherit", "inherit"] });
  if (r.error) throw r.error;
  if (r.status !== 0)
    throw new Error(`scripts/cluster/${script} ${args.join(" ")} failed (exit ${r.status})`);
}

/** The cluster's variables (`.testenv/cluster/env`); throws when the cluster was never started. */
export function clusterEnv(): Record<string, string> {
  const f = clusterEnvFile();
  if (!existsSync(f)) throw new Error(`${f} not found: run 'gavel cluster up' first`);
  return readEnvFile(f);
}

async function until(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 1000));
  }
  throw new Error(`${what} not ready after ${timeoutMs / 1000}s`);
}

async function ensureBucket(env: Record<string, string>): Promise<void> {
  const { S3Client, CreateBucketCommand, HeadBucketCommand } = await import("@aws-sdk/client-s3");
  const client = new S3Client({
    endpoint: env.S3_ENDPOINT,
    region: env.S3_REGION ?? "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID!, secretAccessKey: env.AWS_SECRET_ACCESS_KEY! },
  });
  try {
    await until("S3 (versitygw)", 60_000, async () => {
      try {
        await client.send(new HeadBucketCommand({ Bucket: env.S3_BUCKET }));
      } catch {
        await client.send(new CreateBucketCommand({ Bucket: env.S3_BUCKET }));
      }
      return true;
    });
  } finally {
    client.destroy();
  }
}

async function kafkaReady(env: Record<string, string>): Promise<void> {
  await until("Kafka", 120_000, () => kafkaAnswers(env.KAFKA_BOOTSTRAP_SERVERS!, "gavel-cluster", 3000));
}

export interface ClusterUpOptions {
  /** Build and import the Gavel image from the working tree (default true). */
  image?: boolean;
  /** Build the image from this commit instead (GAVEL_CLUSTER_IMAGE_REF). */
  imageRef?: string;
}

/** Starts whatever is not running; harmless when everything is up. */
export async function up(opts: ClusterUpOptions = {}): Promise<Record<string, string>> {
  const t0 = Date.now();
  const step = (name: string, fn: () => void | Promise<void>) => async () => {
    const t = Date.now();
    progress(`== ${name}`);
    await fn();
    progress(`== ${name}: ${((Date.now() - t) / 1000).toFixed(0)}s`);
  };
  await step("system packages", () => sh("node.sh", ["prereqs"]))();
  await step("binaries (cached in ~/.cache/gavel/k8s after the first build)", () => sh("build.sh"))();
  await step("node", () => sh("node.sh", ["up"]))();
  await step("S3 bucket and Kafka metadata", async () => {
    const env = clusterEnv();
    await ensureBucket(env);
    await kafkaReady(env);
  })();
  if (opts.image !== false) {
    const ref = opts.imageRef ?? process.env.GAVEL_CLUSTER_IMAGE_REF;
    await step(`Gavel image from ${ref ? `commit ${ref}` : "the working tree"}`, () =>
      sh("image.sh", ref ? ["--ref", ref] : []),
    )();
    sh("node.sh", ["write-env"]);
  }
  progress(
    `cluster up in ${((Date.now() - t0) / 1000).toFixed(0)}s; '. ${clusterEnvFile()}' then kubectl/helm (GAVEL_CLUSTER_KUBECTL, GAVEL_CLUSTER_HELM)`,
  );
  return clusterEnv();
}

export async function down(): Promise<void> {
  sh("node.sh", ["down"]);
}

export async function status(): Promise<boolean> {
  const r = spawnSync("bash", [join(scripts, "node.sh"), "status"], {
    stdio: ["ignore", "inherit", "inherit"],
  });
  return r.status === 0;
}

/** kubectl against the cluster (from the host), returning stdout; throws with stderr on failure. */
export function kubectl(args: string[], input?: string): string {
  const env = clusterEnv();
  const r = spawnSync(env.GAVEL_CLUSTER_KUBECTL ?? "kubectl", args, {
    input,
    encoding: "utf8",
    env: { ...process.env, KUBECONFIG: env.KUBECONFIG, HOME: join(clusterDir(), "home") },
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`kubectl ${args.join(" ")}: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

interface PipelineDoc {
  kind?: string;
  metadata?: { name?: string; namespace?: string };
  spec?: {
    kafka?: { authSecretRef?: { name?: string } };
    storage?: {
      postgres?: { secretRef?: { name?: string; key?: string } };
      s3?: { credentialsSecretRef?: { name?: string; accessKeyIdKey?: string; secretAccessKeyKey?: string } };
    };
    ingestAuth?: { apiKeysSecretRef?: { name?: string; key?: string } };
  };
}

interface SecretSpec {
  namespace: string;
  name: string;
  data: Record<string, string>;
  /** Keep the values of an existing Secret (ingest keys clients already use). */
  keepExisting?: boolean;
}

/** The Secrets a pipeline file refers to, filled with this cluster's in-cluster values. */
function pipelineSecrets(text: string, env: Record<string, string>, namespace: string): SecretSpec[] {
  const out: SecretSpec[] = [];
  for (const doc of parseAllDocuments(text)) {
    const p = doc.toJS() as PipelineDoc | null;
    if (p?.kind !== "AuctionPipeline" || !p.metadata?.name) continue;
    const ns = p.metadata.namespace ?? namespace;
    const pg = p.spec?.storage?.postgres?.secretRef;
    if (pg?.name)
      out.push({
        namespace: ns,
        name: pg.name,
        data: { [pg.key ?? "url"]: env.GAVEL_CLUSTER_DATABASE_URL! },
      });
    const s3 = p.spec?.storage?.s3?.credentialsSecretRef;
    if (s3?.name) {
      out.push({
        namespace: ns,
        name: s3.name,
        data: {
          [s3.accessKeyIdKey ?? "AWS_ACCESS_KEY_ID"]: env.AWS_ACCESS_KEY_ID!,
          [s3.secretAccessKeyKey ?? "AWS_SECRET_ACCESS_KEY"]: env.AWS_SECRET_ACCESS_KEY!,
        },
      });
    }
    const keys = p.spec?.ingestAuth?.apiKeysSecretRef;
    out.push({
      namespace: ns,
      name: keys?.name ?? `${p.metadata.name}-ingest-keys`,
      data: { [keys?.key ?? "keys"]: randomBytes(24).toString("hex") },
      keepExisting: true,
    });
    // The cluster's Kafka is a plaintext listener: an empty Secret (no SASL, no TLS).
    const auth = p.spec?.kafka?.authSecretRef;
    if (auth?.name) out.push({ namespace: ns, name: auth.name, data: {} });
  }
  return out;
}

export async function secrets(opts: { file: string; namespace?: string }): Promise<void> {
  const env = clusterEnv();
  const specs = pipelineSecrets(readFileSync(opts.file, "utf8"), env, opts.namespace ?? "default");
  if (specs.length === 0) throw new Error(`${opts.file}: no AuctionPipeline found`);
  for (const ns of new Set(specs.map((s) => s.namespace))) {
    if (kubectl(["get", "namespace", ns, "--ignore-not-found", "-o", "name"]).trim() === "") {
      kubectl(["create", "namespace", ns]);
    }
  }
  for (const s of specs) {
    const exists =
      s.keepExisting &&
      kubectl(["get", "secret", "-n", s.namespace, s.name, "--ignore-not-found", "-o", "name"]).trim() !== "";
    if (exists) {
      process.stdout.write(`secret ${s.namespace}/${s.name} kept (exists)\n`);
      continue;
    }
    const manifest = JSON.stringify({
      apiVersion: "v1",
      kind: "Secret",
      metadata: {
        name: s.name,
        namespace: s.namespace,
        labels: { "app.kubernetes.io/managed-by": "gavel-cluster" },
      },
      type: "Opaque",
      stringData: s.data,
    });
    kubectl(["apply", "-f", "-"], manifest);
    process.stdout.write(`secret ${s.namespace}/${s.name} (${Object.keys(s.data).join(", ") || "empty"})\n`);
  }
}

/**
 * The pod shape shared by processors and the rollup: the `gavel` image, the
 * rendered pipeline mounted read-only, connection settings as the environment
 * names of lib/config.ts (secrets only by reference), and a locked-down
 * security context (non-root, read-only root filesystem, no capabilities).
 */
import type {
  V1Container,
  V1EnvFromSource,
  V1EnvVar,
  V1PodSpec,
  V1ResourceRequirements,
} from "@kubernetes/client-node";
import type { EnvName } from "../lib/config.ts";
import type { AuctionPipeline } from "../operator/api/v1alpha1/pipeline.ts";
import type { Resources } from "../operator/api/v1alpha1/types.ts";
import { CONFIG_DIR } from "./names.ts";

/** An env var whose name is one of lib/config.ts's names. */
function env(name: EnvName, value: string): V1EnvVar {
  return { name, value };
}
function secretEnv(name: EnvName, secret: string, key: string): V1EnvVar {
  return { name, valueFrom: { secretKeyRef: { name: secret, key } } };
}

/** Environment every gavel pod of the pipeline gets. */
export function pipelineEnv(
  p: AuctionPipeline,
  logLevel: string,
): { env: V1EnvVar[]; envFrom: V1EnvFromSource[] } {
  const s = p.spec;
  const out: V1EnvVar[] = [
    env("KAFKA_BOOTSTRAP_SERVERS", s.kafka.bootstrapServers),
    secretEnv("DATABASE_URL", s.storage.postgres.secretRef.name, s.storage.postgres.secretRef.key),
    env("S3_BUCKET", s.storage.s3.bucket),
    env("S3_REGION", s.storage.s3.region),
  ];
  if (s.storage.s3.endpoint !== undefined) out.push(env("S3_ENDPOINT", s.storage.s3.endpoint));
  const creds = s.storage.s3.credentialsSecretRef;
  if (creds !== undefined) {
    out.push(secretEnv("AWS_ACCESS_KEY_ID", creds.name, creds.accessKeyIdKey));
    out.push(secretEnv("AWS_SECRET_ACCESS_KEY", creds.name, creds.secretAccessKeyKey));
  }
  out.push(
    { name: "LOG_LEVEL", value: logLevel },
    { name: "GAVEL_PIPELINE", value: p.metadata.name },
    { name: "POD_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
    { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
  );
  const envFrom: V1EnvFromSource[] =
    s.kafka.authSecretRef === undefined ? [] : [{ secretRef: { name: s.kafka.authSecretRef.name } }];
  return { env: out, envFrom };
}

export function resources(r: Resources): V1ResourceRequirements {
  const limits: Record<string, string> = { memory: r.limits.memory };
  if (r.limits.cpu !== undefined) limits.cpu = r.limits.cpu;
  return { requests: { cpu: r.requests.cpu, memory: r.requests.memory }, limits };
}

export interface GavelPodOptions {
  readonly pipeline: AuctionPipeline;
  readonly image: string;
  readonly args: readonly string[];
  readonly configMap: string;
  readonly serviceAccount: string;
  readonly resources: Resources;
  readonly logLevel: string;
  /** Mount the ServiceAccount token (only the rollup needs the API). Default false. */
  readonly automountToken?: boolean;
  /** Extra container settings (ports, probes). */
  readonly container?: Partial<V1Container>;
  readonly restartPolicy?: "Always" | "Never" | "OnFailure";
}

export function gavelPodSpec(o: GavelPodOptions): V1PodSpec {
  const { env: envVars, envFrom } = pipelineEnv(o.pipeline, o.logLevel);
  const container: V1Container = {
    name: "gavel",
    image: o.image,
    imagePullPolicy: o.pipeline.spec.imagePullPolicy,
    command: ["gavel", ...o.args],
    env: envVars,
    ...(envFrom.length > 0 ? { envFrom } : {}),
    resources: resources(o.resources),
    securityContext: {
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
    },
    volumeMounts: [
      { name: "config", mountPath: CONFIG_DIR, readOnly: true },
      { name: "tmp", mountPath: "/tmp" },
    ],
    ...o.container,
  };
  return {
    serviceAccountName: o.serviceAccount,
    automountServiceAccountToken: o.automountToken ?? false,
    ...(o.restartPolicy ? { restartPolicy: o.restartPolicy } : {}),
    securityContext: {
      runAsNonRoot: true,
      runAsUser: 10001,
      runAsGroup: 10001,
      fsGroup: 10001,
      seccompProfile: { type: "RuntimeDefault" },
    },
    containers: [container],
    volumes: [
      { name: "config", configMap: { name: o.configMap } },
      { name: "tmp", emptyDir: { sizeLimit: "1Gi" } },
    ],
  };
}

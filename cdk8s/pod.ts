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
import type { AuctionPipeline } from "../api/v1alpha1/pipeline.ts";
import type { Resources } from "../api/v1alpha1/types.ts";
import type { EnvName } from "../lib/config.ts";
import { OTEL_ENV } from "../lib/telemetry.ts";
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

/** Who a pod is, for its OpenTelemetry resource. */
export interface TelemetryIdentity {
  /** `service.name`: `gavel-<processor>` or `gavel-rollup`. */
  readonly serviceName: string;
  /** Namespace the pod runs in. */
  readonly namespace: string;
  /** The workload: `k8s.deployment.name` or `k8s.cronjob.name`. */
  readonly workload: { readonly kind: "deployment" | "cronjob"; readonly name: string };
}

/**
 * The standard `OTEL_*` variables lib/telemetry.ts reads, from
 * `spec.observability`. Must follow POD_NAME in the env list: Kubernetes
 * expands `$(POD_NAME)` only from variables defined before.
 */
export function telemetryEnv(p: AuctionPipeline, id: TelemetryIdentity): V1EnvVar[] {
  const o = p.spec.observability;
  const attrs: [string, string][] = [
    ["gavel.pipeline", p.metadata.name],
    ["k8s.namespace.name", id.namespace],
    [`k8s.${id.workload.kind}.name`, id.workload.name],
    ["k8s.pod.name", "$(POD_NAME)"],
    ...Object.entries(o.resourceAttributes ?? {}).sort(([a], [b]) => (a < b ? -1 : 1)),
  ];
  const out: V1EnvVar[] = [
    { name: OTEL_ENV.serviceName, value: id.serviceName },
    { name: OTEL_ENV.resourceAttributes, value: attrs.map(([k, v]) => `${k}=${v}`).join(",") },
  ];
  if (o.otlpEndpoint !== undefined) out.push({ name: OTEL_ENV.endpoint, value: o.otlpEndpoint });
  if (o.tracesSampleRatio !== undefined)
    out.push(
      { name: OTEL_ENV.sampler, value: "parentbased_traceidratio" },
      { name: OTEL_ENV.samplerArg, value: String(o.tracesSampleRatio) },
    );
  return out;
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
  /** OpenTelemetry identity of the pod (service name, workload). */
  readonly telemetry: TelemetryIdentity;
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
    env: [...envVars, ...telemetryEnv(o.pipeline, o.telemetry)],
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

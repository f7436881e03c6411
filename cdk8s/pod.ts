/**
 * The pod shape shared by processors and the rollup: the `gavel` image, the
 * rendered pipeline mounted read-only, settings as the environment variables
 * of api/env.ts (secrets only by reference), and a locked-down security
 * context (non-root, read-only root filesystem, no capabilities).
 */
import type {
  V1Container,
  V1EnvFromSource,
  V1EnvVar,
  V1PodSpec,
  V1ResourceRequirements,
} from "@kubernetes/client-node";
import { ENV, type EnvKey } from "../api/env.ts";
import type { AuctionPipeline } from "../api/v1alpha1/pipeline.ts";
import type { Resources } from "../api/v1alpha1/types.ts";
import { CONFIG_DIR } from "./names.ts";

/** One variable of api/env.ts, as `ENV.<key>`: a pod gets no name the processes do not read. */
type EnvSpec = (typeof ENV)[EnvKey];
/** A variable that holds a secret: set only from a Secret reference. */
export type SecretEnvSpec = Extract<EnvSpec, { readonly secret: true }>;
/** A variable that may be written as a plain value (the type keeps secrets out). */
export type PlainEnvSpec = Exclude<EnvSpec, SecretEnvSpec>;

/** `name=value` in the pod spec. */
export function envVar(spec: PlainEnvSpec, value: string): V1EnvVar {
  return { name: spec.name, value };
}

/** A secret, by reference to one key of a Secret. */
export function secretEnvVar(spec: SecretEnvSpec, secret: string, key: string): V1EnvVar {
  return { name: spec.name, valueFrom: { secretKeyRef: { name: secret, key } } };
}

/** A field of the pod itself (downward API), e.g. `metadata.name`. */
function fieldEnvVar(spec: PlainEnvSpec, fieldPath: string): V1EnvVar {
  return { name: spec.name, valueFrom: { fieldRef: { fieldPath } } };
}

/** Environment every gavel pod of the pipeline gets. */
export function pipelineEnv(
  p: AuctionPipeline,
  logLevel: string,
): { env: V1EnvVar[]; envFrom: V1EnvFromSource[] } {
  const s = p.spec;
  const pg = s.storage.postgres.secretRef;
  const out: V1EnvVar[] = [
    envVar(ENV.kafkaBootstrapServers, s.kafka.bootstrapServers),
    secretEnvVar(ENV.databaseUrl, pg.name, pg.key),
    envVar(ENV.s3Bucket, s.storage.s3.bucket),
    envVar(ENV.s3Region, s.storage.s3.region),
  ];
  if (s.storage.s3.endpoint !== undefined) out.push(envVar(ENV.s3Endpoint, s.storage.s3.endpoint));
  const creds = s.storage.s3.credentialsSecretRef;
  if (creds !== undefined) {
    out.push(secretEnvVar(ENV.awsAccessKeyId, creds.name, creds.accessKeyIdKey));
    out.push(secretEnvVar(ENV.awsSecretAccessKey, creds.name, creds.secretAccessKeyKey));
  }
  out.push(
    envVar(ENV.logLevel, logLevel),
    envVar(ENV.pipeline, p.metadata.name),
    fieldEnvVar(ENV.podNamespace, "metadata.namespace"),
    fieldEnvVar(ENV.podName, "metadata.name"),
  );
  // The KAFKA_SASL_* / KAFKA_TLS* variables come whole from the Secret (lib/config.ts readKafkaSecurity).
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
    envVar(ENV.otelServiceName, id.serviceName),
    envVar(ENV.otelResourceAttributes, attrs.map(([k, v]) => `${k}=${v}`).join(",")),
  ];
  if (o.otlpEndpoint !== undefined) out.push(envVar(ENV.otlpEndpoint, o.otlpEndpoint));
  if (o.tracesSampleRatio !== undefined)
    out.push(
      envVar(ENV.otelSampler, "parentbased_traceidratio"),
      envVar(ENV.otelSamplerArg, String(o.tracesSampleRatio)),
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

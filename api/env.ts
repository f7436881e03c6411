/**
 * Every environment variable a Gavel process reads in production: its name
 * (a user-facing contract: the operator writes these into pods, `gavel
 * testenv up` into `.testenv/env`, the docs name them), what it means, who
 * reads it and its default. Processes read them through `envValue`, the
 * operator's pod templates (cdk8s/) write them through `ENV.<key>.name`, and
 * docs/configuration.md lists them (a unit test keeps the two equal).
 *
 * Development tools (`gavel testenv`, `gavel cluster`, the benchmarks) have
 * their own settings (GAVEL_CACHE, GAVEL_TESTENV_DIR, GAVEL_CLUSTER_*, ...),
 * documented in docs/operations.md; they are not read in a pod.
 */
export interface EnvVar {
  readonly name: string;
  /** Who reads it: `all` (every processor), a process name, or several. */
  readonly readBy: string;
  readonly doc: string;
  /** The value used when unset or empty (as text), if any. */
  readonly default?: string;
  /** Holds a secret: the operator sets it only from a Secret reference, and it is never logged. */
  readonly secret?: boolean;
}

export const ENV = {
  // Connections (lib/config.ts).
  kafkaBootstrapServers: {
    name: "KAFKA_BOOTSTRAP_SERVERS",
    readBy: "all",
    doc: "Kafka bootstrap servers, `host:port,...` (the operator copies `spec.kafka.bootstrapServers`).",
  },
  databaseUrl: {
    name: "DATABASE_URL",
    readBy: "silver-writer, rollup, fraud train, migrate",
    doc: "PostgreSQL URL, `postgres://user:pass@host:5432/db` (`?sslmode=verify-full&sslrootcert=<file>` for TLS); from the Secret of `spec.storage.postgres.secretRef`.",
    secret: true,
  },
  s3Endpoint: {
    name: "S3_ENDPOINT",
    readBy: "bronze-archiver, bid-processor, rollup, fraud train",
    doc: "S3 endpoint URL (path-style); overrides `spec.storage.s3.endpoint`. Unset: AWS.",
  },
  s3Region: {
    name: "S3_REGION",
    readBy: "bronze-archiver, bid-processor, rollup, fraud train",
    doc: "S3 region.",
    default: "us-east-1",
  },
  s3Bucket: {
    name: "S3_BUCKET",
    readBy: "bronze-archiver, bid-processor, rollup, fraud train",
    doc: "S3 bucket; overrides `spec.storage.s3.bucket`.",
  },
  awsAccessKeyId: {
    name: "AWS_ACCESS_KEY_ID",
    readBy: "bronze-archiver, bid-processor, rollup, fraud train",
    doc: "S3 access key id, from the Secret of `spec.storage.s3.credentialsSecretRef`. Unset: the pod's workload identity.",
    secret: true,
  },
  awsSecretAccessKey: {
    name: "AWS_SECRET_ACCESS_KEY",
    readBy: "bronze-archiver, bid-processor, rollup, fraud train",
    doc: "S3 secret access key, from the same Secret.",
    secret: true,
  },
  kubeconfig: {
    name: "KUBECONFIG",
    readBy: "operator, rollup, fraud train",
    doc: "kubeconfig file outside a cluster. Unset: the in-cluster service account.",
  },
  prometheusUrl: {
    name: "PROMETHEUS_URL",
    readBy: "tests, bench",
    doc: "Prometheus base URL the tests and benchmarks query.",
  },
  // Kafka authentication (lib/config.ts readKafkaSecurity).
  kafkaSaslMechanism: {
    name: "KAFKA_SASL_MECHANISM",
    readBy: "all",
    doc: "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (from the Secret of `spec.kafka.authSecretRef`). Unset: no SASL.",
  },
  kafkaSaslUsername: {
    name: "KAFKA_SASL_USERNAME",
    readBy: "all",
    doc: "SASL user name.",
  },
  kafkaSaslPassword: {
    name: "KAFKA_SASL_PASSWORD",
    readBy: "all",
    doc: "SASL password.",
    secret: true,
  },
  kafkaTls: {
    name: "KAFKA_TLS",
    readBy: "all",
    doc: "`true` to connect over TLS (implied by `KAFKA_TLS_CA`).",
    default: "false",
  },
  kafkaTlsCa: {
    name: "KAFKA_TLS_CA",
    readBy: "all",
    doc: "The Kafka cluster CA: PEM text or the path of a PEM file. Unset: the system trust store.",
  },
  kafkaClient: {
    name: "GAVEL_KAFKA_CLIENT",
    readBy: "all",
    doc: "Kafka client library: `kafkajs` or `confluent` (librdkafka, the optional `@confluentinc/kafka-javascript`; ADR 0006).",
    default: "kafkajs",
  },
  // Every processor (processors/runtime/config.ts).
  httpPort: {
    name: "GAVEL_HTTP_PORT",
    readBy: "all",
    doc: "Port of the HTTP server: `/healthz`, `/readyz`, `/metrics` (and ingest's API).",
    default: "8080",
  },
  httpHost: {
    name: "GAVEL_HTTP_HOST",
    readBy: "all",
    doc: "Listen address of the HTTP server.",
    default: "0.0.0.0",
  },
  instanceId: {
    name: "GAVEL_INSTANCE_ID",
    readBy: "all",
    doc: "Replica id in Kafka client ids and logs (default: `POD_NAME`, else `<host>-<pid>`).",
  },
  podName: {
    name: "POD_NAME",
    readBy: "all",
    doc: "The pod's name (downward API), the replica id when `GAVEL_INSTANCE_ID` is unset.",
  },
  podNamespace: {
    name: "POD_NAMESPACE",
    readBy: "operator, rollup, fraud train",
    doc: "The pod's namespace (downward API): the operator's Lease namespace, the rollup's pipeline reference.",
  },
  pipeline: {
    name: "GAVEL_PIPELINE",
    readBy: "rollup, fraud train",
    doc: "The AuctionPipeline's name (with `POD_NAMESPACE`: the resource the rollup annotates).",
  },
  logLevel: {
    name: "LOG_LEVEL",
    readBy: "all",
    doc: "pino log level of the JSON logs on stderr (`spec.observability.logLevel`).",
    default: "info",
  },
  // ingest (processors/ingest/).
  apiKeys: {
    name: "GAVEL_API_KEYS",
    readBy: "ingest",
    doc: "Ingest API keys, comma-separated: `KEY` (every scope) or `KEY=bids+auctions+users`; from the Secret of `spec.processors.ingest.apiKeysSecretRef`.",
    secret: true,
  },
  apiKeysFile: {
    name: "GAVEL_API_KEYS_FILE",
    readBy: "ingest",
    doc: "A file with the same entries, one per line (a mounted Secret).",
  },
  ingestAuth: {
    name: "GAVEL_INGEST_AUTH",
    readBy: "ingest",
    doc: "`disabled` turns authentication off (local development only).",
  },
  ingestMaxInFlight: {
    name: "GAVEL_INGEST_MAX_INFLIGHT",
    readBy: "ingest",
    doc: "Most records waiting for the broker before ingest answers 503.",
    default: "20000",
  },
  // bronze-archiver (processors/bronze-archiver/).
  bronzeMaxAgeMs: {
    name: "GAVEL_BRONZE_MAX_AGE_MS",
    readBy: "bronze-archiver",
    doc: "Oldest buffered record before a bronze object is cut, ms.",
    default: "60000",
  },
  bronzeMaxRecords: {
    name: "GAVEL_BRONZE_MAX_RECORDS",
    readBy: "bronze-archiver",
    doc: "Most records of one bronze object.",
    default: "50000",
  },
  // Clients of ingest (`gavel generate --to http`, `gavel load`).
  ingestUrl: {
    name: "GAVEL_INGEST_URL",
    readBy: "gavel load, gavel generate",
    doc: "Ingest base URL (`--url`).",
    default: "http://127.0.0.1:8080",
  },
  apiKey: {
    name: "GAVEL_API_KEY",
    readBy: "gavel load, gavel generate",
    doc: "The API key a client sends (`--api-key`).",
    secret: true,
  },
  // OpenTelemetry (lib/telemetry.ts): the standard names.
  otlpEndpoint: {
    name: "OTEL_EXPORTER_OTLP_ENDPOINT",
    readBy: "all, operator, rollup",
    doc: "Base URL of an OTLP/HTTP receiver (`spec.observability.otlpEndpoint`). Unset: nothing is exported over OTLP; `/metrics` is still served.",
  },
  otlpTracesEndpoint: {
    name: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    readBy: "all, operator, rollup",
    doc: "Per-signal OTLP endpoint for traces (full URL).",
  },
  otlpMetricsEndpoint: {
    name: "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    readBy: "all, operator, rollup",
    doc: "Per-signal OTLP endpoint for metrics (full URL).",
  },
  otelServiceName: {
    name: "OTEL_SERVICE_NAME",
    readBy: "all, operator, rollup",
    doc: "`service.name` (the operator sets `gavel-<processor>`).",
  },
  otelResourceAttributes: {
    name: "OTEL_RESOURCE_ATTRIBUTES",
    readBy: "all, operator, rollup",
    doc: "Extra resource attributes, `k=v,...` (the operator sets pipeline, namespace, deployment and pod).",
  },
  otelTracesExporter: {
    name: "OTEL_TRACES_EXPORTER",
    readBy: "all, operator, rollup",
    doc: "`none` turns OTLP trace export off.",
  },
  otelMetricsExporter: {
    name: "OTEL_METRICS_EXPORTER",
    readBy: "all, operator, rollup",
    doc: "`none` turns OTLP metric export off.",
  },
  otelSampler: {
    name: "OTEL_TRACES_SAMPLER",
    readBy: "all, operator, rollup",
    doc: "Trace sampler (`parentbased_traceidratio` with a ratio at 10k+ bids/s).",
    default: "parentbased_always_on",
  },
  otelSamplerArg: {
    name: "OTEL_TRACES_SAMPLER_ARG",
    readBy: "all, operator, rollup",
    doc: "The sampler's ratio (`spec.observability.tracesSampleRatio`).",
    default: "1",
  },
  otelMetricInterval: {
    name: "OTEL_METRIC_EXPORT_INTERVAL",
    readBy: "all, operator, rollup",
    doc: "OTLP metric export interval, ms.",
    default: "60000",
  },
  otelSdkDisabled: {
    name: "OTEL_SDK_DISABLED",
    readBy: "all, operator, rollup",
    doc: "`true`: no OTLP export at all.",
  },
  otelBspDelay: {
    name: "OTEL_BSP_SCHEDULE_DELAY",
    readBy: "all, operator, rollup",
    doc: "Span batch export delay, ms.",
    default: "5000",
  },
} as const satisfies Record<string, EnvVar>;

export type EnvKey = keyof typeof ENV;
/** The name of one variable, e.g. `EnvName<"databaseUrl">` is `"DATABASE_URL"`. */
export type EnvName<K extends EnvKey = EnvKey> = (typeof ENV)[K]["name"];

/** The value of one variable; empty counts as unset, then the documented default (if any). */
export function envValue(key: EnvKey, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const v = env[ENV[key].name];
  if (v !== undefined && v !== "") return v;
  const spec: EnvVar = ENV[key];
  return spec.default;
}

/** A variable's value as a number (its default when unset); says which variable when it is not one. */
export function envNumber(
  key: EnvKey,
  env: NodeJS.ProcessEnv = process.env,
  check: (n: number) => boolean = Number.isFinite,
  expected = "a number",
): number | undefined {
  const v = envValue(key, env);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!check(n)) throw new Error(`${ENV[key].name} must be ${expected}, got '${v}'`);
  return n;
}

/**
 * The one place that reads connection settings from the environment. The
 * names are a user-facing contract: `gavel testenv up` writes them to
 * `.testenv/env`, the operator injects them into processor pods, and the docs
 * use them.
 */
export interface ConnectionConfig {
  /** Comma-separated `host:port` list. */
  readonly kafkaBootstrapServers?: string;
  /** libpq-style URL, e.g. `postgres://user@127.0.0.1:5432/gavel`. */
  readonly databaseUrl?: string;
  readonly s3Endpoint?: string;
  readonly s3Region: string;
  readonly s3Bucket?: string;
  readonly awsAccessKeyId?: string;
  readonly awsSecretAccessKey?: string;
  readonly kubeconfig?: string;
  readonly prometheusUrl?: string;
}

export const ENV_NAMES = [
  "KAFKA_BOOTSTRAP_SERVERS",
  "DATABASE_URL",
  "S3_ENDPOINT",
  "S3_REGION",
  "S3_BUCKET",
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
  "KUBECONFIG",
  "PROMETHEUS_URL",
] as const;

export type EnvName = (typeof ENV_NAMES)[number];

function opt(env: NodeJS.ProcessEnv, name: EnvName): string | undefined {
  const v = env[name];
  return v === undefined || v === "" ? undefined : v;
}

export function readConnectionConfig(env: NodeJS.ProcessEnv = process.env): ConnectionConfig {
  return {
    kafkaBootstrapServers: opt(env, "KAFKA_BOOTSTRAP_SERVERS"),
    databaseUrl: opt(env, "DATABASE_URL"),
    s3Endpoint: opt(env, "S3_ENDPOINT"),
    s3Region: opt(env, "S3_REGION") ?? "us-east-1",
    s3Bucket: opt(env, "S3_BUCKET"),
    awsAccessKeyId: opt(env, "AWS_ACCESS_KEY_ID"),
    awsSecretAccessKey: opt(env, "AWS_SECRET_ACCESS_KEY"),
    kubeconfig: opt(env, "KUBECONFIG"),
    prometheusUrl: opt(env, "PROMETHEUS_URL"),
  };
}

/** A required setting that is missing: says which variable and how to get it. */
export class MissingConfigError extends Error {
  constructor(name: EnvName) {
    super(
      `${name} is not set. Set it in the environment, or run 'gavel testenv up' and 'source .testenv/env' for a local test environment.`,
    );
    this.name = "MissingConfigError";
  }
}

export function requireEnv(cfg: ConnectionConfig, key: keyof ConnectionConfig, name: EnvName): string {
  const v = cfg[key];
  if (v === undefined || v === "") throw new MissingConfigError(name);
  return v;
}

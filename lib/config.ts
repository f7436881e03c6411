import { readFileSync } from "node:fs";

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

/**
 * Kafka authentication and encryption, from the environment the operator
 * fills from `spec.kafka.authSecretRef` (envFrom): KAFKA_SASL_MECHANISM
 * (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512), KAFKA_SASL_USERNAME,
 * KAFKA_SASL_PASSWORD, KAFKA_TLS (`true` to encrypt) and KAFKA_TLS_CA (the
 * cluster CA: its PEM text, or the path of a PEM file; without it the
 * system's trust store is used).
 */
export interface KafkaSecurity {
  readonly sasl?: {
    readonly mechanism: "plain" | "scram-sha-256" | "scram-sha-512";
    readonly username: string;
    readonly password: string;
  };
  /** `ca`: PEM text (read from the file when KAFKA_TLS_CA names one). */
  readonly tls?: { readonly ca?: string };
}

/**
 * KAFKA_TLS_CA as PEM text: the value itself when it is PEM (a Secret's
 * key), else the contents of the file it names (a mounted file, the test
 * environment's CA).
 */
export function readCaSetting(value: string, readFile: (path: string) => string = defaultReadFile): string {
  if (value.includes("-----BEGIN ")) return value;
  let pem: string;
  try {
    pem = readFile(value);
  } catch (err) {
    throw new Error(
      `KAFKA_TLS_CA is neither PEM text nor a readable file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message} for '${value}'): set it to the cluster CA's PEM certificate or to the path of a PEM file`,
    );
  }
  if (!pem.includes("-----BEGIN CERTIFICATE-----"))
    throw new Error(
      `KAFKA_TLS_CA names '${value}', which holds no PEM certificate: point it at the cluster CA's PEM file`,
    );
  return pem;
}

function defaultReadFile(path: string): string {
  return readFileSync(path, "utf8");
}

const SASL_MECHANISMS = ["plain", "scram-sha-256", "scram-sha-512"] as const;

export function readKafkaSecurity(env: NodeJS.ProcessEnv = process.env): KafkaSecurity | undefined {
  const mech = env.KAFKA_SASL_MECHANISM?.trim().toLowerCase();
  const tlsFlag = env.KAFKA_TLS?.trim().toLowerCase();
  if (tlsFlag !== undefined && tlsFlag !== "" && !["true", "false", "1", "0"].includes(tlsFlag)) {
    throw new Error(`KAFKA_TLS must be 'true' or 'false', got '${env.KAFKA_TLS}'`);
  }
  const tls = tlsFlag === "true" || tlsFlag === "1" || (env.KAFKA_TLS_CA ?? "") !== "";
  let sasl: KafkaSecurity["sasl"];
  if (mech) {
    if (!(SASL_MECHANISMS as readonly string[]).includes(mech)) {
      throw new Error(
        `KAFKA_SASL_MECHANISM must be one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, got '${env.KAFKA_SASL_MECHANISM}'`,
      );
    }
    const username = env.KAFKA_SASL_USERNAME ?? "";
    const password = env.KAFKA_SASL_PASSWORD ?? "";
    if (username === "" || password === "") {
      throw new Error(
        `KAFKA_SASL_MECHANISM is ${env.KAFKA_SASL_MECHANISM} but KAFKA_SASL_USERNAME or KAFKA_SASL_PASSWORD is empty: put both in the Secret named by spec.kafka.authSecretRef`,
      );
    }
    sasl = { mechanism: mech as (typeof SASL_MECHANISMS)[number], username, password };
  }
  if (!sasl && !tls) return undefined;
  return {
    ...(sasl ? { sasl } : {}),
    ...(tls ? { tls: env.KAFKA_TLS_CA ? { ca: readCaSetting(env.KAFKA_TLS_CA) } : {} } : {}),
  };
}

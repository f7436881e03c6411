import { readFileSync } from "node:fs";
import { ENV, type EnvKey, type EnvName, envValue } from "../api/env.ts";
import { GavelError } from "./errors.ts";

/**
 * The connection settings of every process, read from the environment
 * variables of api/env.ts (whose names are a user-facing contract: `gavel
 * testenv up` writes them to `.testenv/env`, the operator injects them into
 * processor pods, and the docs use them). Each field is named after its
 * `ENV` key.
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

/** A field of ConnectionConfig, which is also the `ENV` key of its variable. */
export type ConnectionKey = keyof ConnectionConfig & EnvKey;

const CONNECTION_KEYS = [
  "kafkaBootstrapServers",
  "databaseUrl",
  "s3Endpoint",
  "s3Region",
  "s3Bucket",
  "awsAccessKeyId",
  "awsSecretAccessKey",
  "kubeconfig",
  "prometheusUrl",
] as const satisfies readonly ConnectionKey[];

/** The variables of the connection settings (a test environment removes them to run without services). */
export const ENV_NAMES: readonly EnvName<ConnectionKey>[] = CONNECTION_KEYS.map((k) => ENV[k].name);

export function readConnectionConfig(env: NodeJS.ProcessEnv = process.env): ConnectionConfig {
  return {
    kafkaBootstrapServers: envValue("kafkaBootstrapServers", env),
    databaseUrl: envValue("databaseUrl", env),
    s3Endpoint: envValue("s3Endpoint", env),
    s3Region: envValue("s3Region", env),
    s3Bucket: envValue("s3Bucket", env),
    awsAccessKeyId: envValue("awsAccessKeyId", env),
    awsSecretAccessKey: envValue("awsSecretAccessKey", env),
    kubeconfig: envValue("kubeconfig", env),
    prometheusUrl: envValue("prometheusUrl", env),
  };
}

/** A required setting that is missing: says which variable and how to get it. */
export class MissingConfigError extends GavelError {
  constructor(name: EnvName) {
    super(
      `${name} is not set. Set it in the environment, or run 'gavel testenv up' and 'source .testenv/env' for a local test environment.`,
    );
  }
}

/**
 * A connection setting that must be set. The variable's name follows from
 * the key; `name`, when a caller still passes it, must be that name (the
 * type says so).
 */
export function requireEnv<K extends ConnectionKey>(
  cfg: ConnectionConfig,
  key: K,
  name: EnvName<K> = ENV[key].name,
): string {
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
      `${ENV.kafkaTlsCa.name} is neither PEM text nor a readable file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message} for '${value}'): set it to the cluster CA's PEM certificate or to the path of a PEM file`,
    );
  }
  if (!pem.includes("-----BEGIN CERTIFICATE-----"))
    throw new Error(
      `${ENV.kafkaTlsCa.name} names '${value}', which holds no PEM certificate: point it at the cluster CA's PEM file`,
    );
  return pem;
}

function defaultReadFile(path: string): string {
  return readFileSync(path, "utf8");
}

const SASL_MECHANISMS = ["plain", "scram-sha-256", "scram-sha-512"] as const;

export function readKafkaSecurity(env: NodeJS.ProcessEnv = process.env): KafkaSecurity | undefined {
  const mechanism = envValue("kafkaSaslMechanism", env);
  const tlsSetting = envValue("kafkaTls", env);
  const caSetting = envValue("kafkaTlsCa", env);
  const mech = mechanism?.trim().toLowerCase();
  const tlsFlag = tlsSetting.trim().toLowerCase();
  if (tlsFlag !== "" && !["true", "false", "1", "0"].includes(tlsFlag)) {
    throw new Error(`${ENV.kafkaTls.name} must be 'true' or 'false', got '${tlsSetting}'`);
  }
  const tls = tlsFlag === "true" || tlsFlag === "1" || caSetting !== undefined;
  let sasl: KafkaSecurity["sasl"];
  if (mech) {
    if (!(SASL_MECHANISMS as readonly string[]).includes(mech)) {
      throw new Error(
        `${ENV.kafkaSaslMechanism.name} must be one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, got '${mechanism}'`,
      );
    }
    const username = envValue("kafkaSaslUsername", env) ?? "";
    const password = envValue("kafkaSaslPassword", env) ?? "";
    if (username === "" || password === "") {
      throw new Error(
        `${ENV.kafkaSaslMechanism.name} is ${mechanism} but ${ENV.kafkaSaslUsername.name} or ${ENV.kafkaSaslPassword.name} is empty: put both in the Secret named by spec.kafka.authSecretRef`,
      );
    }
    sasl = { mechanism: mech as (typeof SASL_MECHANISMS)[number], username, password };
  }
  if (!sasl && !tls) return undefined;
  return {
    ...(sasl ? { sasl } : {}),
    ...(tls ? { tls: caSetting ? { ca: readCaSetting(caSetting) } : {} } : {}),
  };
}

import { describe, expect, it } from "vitest";
import { ENV, type EnvKey } from "../api/env.ts";
import {
  ENV_NAMES,
  MissingConfigError,
  readCaSetting,
  readConnectionConfig,
  readKafkaSecurity,
  requireEnv,
} from "./config.ts";

/** Every connection variable set to its own name, so a field shows which variable it came from. */
const everyConnectionVariable = Object.fromEntries(ENV_NAMES.map((n) => [n, n]));

describe("readConnectionConfig", () => {
  it("reads the contract names and treats empty as unset", () => {
    const cfg = readConnectionConfig({ KAFKA_BOOTSTRAP_SERVERS: "k:9092", DATABASE_URL: "" });
    expect(cfg.kafkaBootstrapServers).toBe("k:9092");
    expect(cfg.databaseUrl).toBeUndefined();
    expect(cfg.s3Region).toBe("us-east-1");
    expect(() => requireEnv(cfg, "databaseUrl", "DATABASE_URL")).toThrow(MissingConfigError);
    expect(() => requireEnv(cfg, "databaseUrl", "DATABASE_URL")).toThrow(
      /DATABASE_URL is not set.*gavel testenv up/,
    );
  });

  it("reads each field from the api/env.ts variable of the same key", () => {
    const cfg = readConnectionConfig(everyConnectionVariable);
    for (const [key, value] of Object.entries(cfg)) expect(value).toBe(ENV[key as EnvKey].name);
    expect(Object.keys(cfg)).toHaveLength(ENV_NAMES.length);
  });

  it("names the missing variable from the key alone", () => {
    expect(() => requireEnv(readConnectionConfig({}), "s3Bucket")).toThrow(
      "S3_BUCKET is not set. Set it in the environment, or run 'gavel testenv up' and 'source .testenv/env' for a local test environment.",
    );
    expect(new MissingConfigError("S3_BUCKET").name).toBe("MissingConfigError");
    expect(requireEnv(readConnectionConfig(everyConnectionVariable), "kubeconfig")).toBe("KUBECONFIG");
  });
});

describe("readKafkaSecurity", () => {
  it("is undefined for a plaintext cluster", () => {
    expect(readKafkaSecurity({})).toBeUndefined();
    expect(readKafkaSecurity({ KAFKA_TLS: "false" })).toBeUndefined();
  });

  it("reads SASL/SCRAM over TLS with a CA", () => {
    expect(
      readKafkaSecurity({
        KAFKA_SASL_MECHANISM: "SCRAM-SHA-512",
        KAFKA_SASL_USERNAME: "gavel",
        KAFKA_SASL_PASSWORD: "s3cret",
        KAFKA_TLS: "true",
        KAFKA_TLS_CA: "-----BEGIN CERTIFICATE-----",
      }),
    ).toEqual({
      sasl: { mechanism: "scram-sha-512", username: "gavel", password: "s3cret" },
      tls: { ca: "-----BEGIN CERTIFICATE-----" },
    });
    expect(readKafkaSecurity({ KAFKA_TLS: "true" })).toEqual({ tls: {} });
  });

  it("says what is wrong and how to fix it", () => {
    expect(() => readKafkaSecurity({ KAFKA_SASL_MECHANISM: "GSSAPI" })).toThrow(
      "KAFKA_SASL_MECHANISM must be one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, got 'GSSAPI'",
    );
    expect(() => readKafkaSecurity({ KAFKA_SASL_MECHANISM: "PLAIN", KAFKA_SASL_USERNAME: "u" })).toThrow(
      /KAFKA_SASL_USERNAME or KAFKA_SASL_PASSWORD is empty: put both in the Secret named by spec.kafka.authSecretRef/,
    );
    expect(() => readKafkaSecurity({ KAFKA_TLS: "yes" })).toThrow(
      "KAFKA_TLS must be 'true' or 'false', got 'yes'",
    );
  });
});

describe("readCaSetting (KAFKA_TLS_CA)", () => {
  const pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
  it("takes PEM text as it is, and reads a file path", () => {
    expect(readCaSetting(pem)).toBe(pem);
    expect(readCaSetting("/etc/kafka/ca.crt", (p) => (p === "/etc/kafka/ca.crt" ? pem : ""))).toBe(pem);
  });
  it("says what is wrong with a path that cannot be read or holds no certificate", () => {
    const missing = (): string => {
      throw Object.assign(new Error("nope"), { code: "ENOENT" });
    };
    expect(() => readCaSetting("/nope.crt", missing)).toThrow(
      "KAFKA_TLS_CA is neither PEM text nor a readable file (ENOENT for '/nope.crt'): set it to the cluster CA's PEM certificate or to the path of a PEM file",
    );
    expect(() => readCaSetting("/x.txt", () => "hello")).toThrow(/holds no PEM certificate/);
  });
});

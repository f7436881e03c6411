import { describe, expect, it } from "vitest";
import { MissingConfigError, readConnectionConfig, readKafkaSecurity, requireEnv } from "./config.ts";

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

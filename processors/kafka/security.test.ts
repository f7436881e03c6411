import { describe, expect, it } from "vitest";
import type { KafkaSecurity } from "../../lib/config.ts";
import { confluentSecurityConfig } from "./confluent.ts";
import { kafkajsSecurityConfig } from "./kafkajs.ts";
import { explainKafkaRefusal, KafkaAccessError } from "./preflight.ts";

/** The settings both clients' mappings are checked with: SCRAM over TLS with the cluster CA. */
const SCRAM_OVER_TLS: KafkaSecurity = {
  sasl: { mechanism: "scram-sha-512", username: "u", password: "p" },
  tls: { ca: "PEM" },
};

describe("kafkajsSecurityConfig", () => {
  it("is empty (plaintext) without settings", () => {
    expect(kafkajsSecurityConfig(undefined)).toEqual({});
  });
  it("maps SCRAM over TLS with the cluster CA", () => {
    expect(kafkajsSecurityConfig(SCRAM_OVER_TLS)).toEqual({
      ssl: { ca: ["PEM"] },
      sasl: { mechanism: "scram-sha-512", username: "u", password: "p" },
    });
  });
  it("uses the system trust store for TLS without a CA, and PLAIN as given", () => {
    expect(
      kafkajsSecurityConfig({ tls: {}, sasl: { mechanism: "plain", username: "u", password: "p" } }),
    ).toEqual({
      ssl: true,
      sasl: { mechanism: "plain", username: "u", password: "p" },
    });
  });
});

describe("confluentSecurityConfig", () => {
  it("is empty (plaintext) without settings", () => {
    expect(confluentSecurityConfig(undefined)).toEqual({});
  });
  it("maps SCRAM over TLS to librdkafka properties, with the CA as PEM and host names verified", () => {
    expect(confluentSecurityConfig(SCRAM_OVER_TLS)).toEqual({
      "security.protocol": "sasl_ssl",
      "sasl.mechanisms": "SCRAM-SHA-512",
      "sasl.username": "u",
      "sasl.password": "p",
      "ssl.endpoint.identification.algorithm": "https",
      "ssl.ca.pem": "PEM",
    });
  });
  it("TLS alone, and SASL without TLS", () => {
    expect(confluentSecurityConfig({ tls: {} })).toEqual({
      "security.protocol": "ssl",
      "ssl.endpoint.identification.algorithm": "https",
    });
    expect(
      confluentSecurityConfig({ sasl: { mechanism: "plain", username: "u", password: "p" } })[
        "security.protocol"
      ],
    ).toBe("sasl_plaintext");
  });
});

describe("explainKafkaRefusal", () => {
  it("names a missing ACL from kafkajs and from librdkafka errors, anywhere in the chain", () => {
    const kjs = Object.assign(new Error("Not authorized to access group"), {
      type: "GROUP_AUTHORIZATION_FAILED",
    });
    expect(explainKafkaRefusal(kjs, "shop")).toBe(
      "Kafka refused access to a consumer group: GROUP_AUTHORIZATION_FAILED (Not authorized to access group): grant User:shop the pipeline's ACLs ('gavel kafka acls -f pipeline.yaml' lists them)",
    );
    const rd = Object.assign(new Error("Broker: Transactional Id authorization failed"), {
      type: "ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
    });
    expect(explainKafkaRefusal(new Error("wrapped", { cause: rd }), "shop")).toMatch(
      /^Kafka refused access to a transactional id: TRANSACTIONAL_ID_AUTHORIZATION_FAILED/,
    );
    const lost = Object.assign(new Error("Failed to find group coordinator"), {
      name: "KafkaJSGroupCoordinatorNotFound",
    });
    expect(explainKafkaRefusal(lost, "shop")).toMatch(
      /GROUP_AUTHORIZATION_FAILED or TRANSACTIONAL_ID_AUTHORIZATION_FAILED/,
    );
  });
  it("passes a preflight refusal through and says nothing about other errors", () => {
    expect(explainKafkaRefusal(new KafkaAccessError("bad password", "KAFKA_SASL_PASSWORD"))).toBe(
      "bad password",
    );
    expect(explainKafkaRefusal(new Error("connection refused"))).toBeUndefined();
    expect(explainKafkaRefusal("text")).toBeUndefined();
  });
});

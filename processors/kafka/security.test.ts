import { describe, expect, it } from "vitest";
import { kafkajsSecurityConfig } from "./kafkajs.ts";

describe("kafkajsSecurityConfig", () => {
  it("is empty (plaintext) without settings", () => {
    expect(kafkajsSecurityConfig(undefined)).toEqual({});
  });
  it("maps SCRAM over TLS with the cluster CA", () => {
    expect(
      kafkajsSecurityConfig({
        sasl: { mechanism: "scram-sha-512", username: "u", password: "p" },
        tls: { ca: "PEM" },
      }),
    ).toEqual({ ssl: { ca: ["PEM"] }, sasl: { mechanism: "scram-sha-512", username: "u", password: "p" } });
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

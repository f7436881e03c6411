import { describe, expect, it } from "vitest";
import { kafkaClientFromEnv } from "./client.ts";

describe("the Kafka client of a process", () => {
  it("is kafkajs unless GAVEL_KAFKA_CLIENT names another; a wrong name says which exist", () => {
    expect(kafkaClientFromEnv({})).toBe("kafkajs");
    expect(kafkaClientFromEnv({ GAVEL_KAFKA_CLIENT: "" })).toBe("kafkajs");
    expect(kafkaClientFromEnv({ GAVEL_KAFKA_CLIENT: "confluent" })).toBe("confluent");
    expect(() => kafkaClientFromEnv({ GAVEL_KAFKA_CLIENT: "rdkafka" })).toThrow(
      "GAVEL_KAFKA_CLIENT must be one of kafkajs, confluent, got 'rdkafka'",
    );
  });
});

import { describe, expect, it } from "vitest";
import { createLogger } from "../../lib/log.ts";
import { chooseKafkaClient, kafkaClientFromEnv } from "./client.ts";

const logger = createLogger("client-test", "silent");

describe("the Kafka client of a process", () => {
  it("GAVEL_KAFKA_CLIENT forces one for every process; unset means each process's default", () => {
    expect(kafkaClientFromEnv({ GAVEL_KAFKA_CLIENT: "confluent" })).toBe("confluent");
    expect(kafkaClientFromEnv({ GAVEL_KAFKA_CLIENT: "" })).toBeUndefined();
    expect(kafkaClientFromEnv({})).toBeUndefined();
    expect(() => kafkaClientFromEnv({ GAVEL_KAFKA_CLIENT: "rdkafka" })).toThrow(
      "GAVEL_KAFKA_CLIENT must be one of kafkajs, confluent, got 'rdkafka'",
    );
  });

  it("takes the forced client, else the preferred one, else kafkajs", async () => {
    expect(await chooseKafkaClient({ logger, preferredClient: "confluent" }, "kafkajs")).toBe("kafkajs");
    expect(await chooseKafkaClient({ logger }, undefined)).toBe("kafkajs");
    expect(await chooseKafkaClient({ logger, preferredClient: "kafkajs" }, undefined)).toBe("kafkajs");
    // librdkafka where it is built (the test machine builds it); kafkajs with a warning where not.
    const built = await import("@confluentinc/kafka-javascript").then(
      () => true,
      () => false,
    );
    expect(await chooseKafkaClient({ logger, preferredClient: "confluent" }, undefined)).toBe(
      built ? "confluent" : "kafkajs",
    );
  });
});

import { logLevel } from "kafkajs";
import { describe, expect, it } from "vitest";
import type { Logger } from "../../lib/log.ts";
import { logCreator } from "./kafkajs.ts";

describe("kafkajs log lines", () => {
  it("keeps retried CONCURRENT_TRANSACTIONS sends out of the error log, and real errors in it", () => {
    const lines: [string, string][] = [];
    const at = (level: string) => (_o: unknown, msg: string) => lines.push([level, msg]);
    const logger = { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
    const create = logCreator(logger as unknown as Logger);
    if (!create) throw new Error("no log creator");
    const log = create(logLevel.ERROR);
    const entry = (message: string) => ({
      namespace: "Producer",
      level: logLevel.ERROR,
      label: "ERROR",
      log: { message, timestamp: "2026-12-07T00:00:00.000Z" },
    });
    log(
      entry(
        "Failed to send messages: The producer attempted to update a transaction while another concurrent operation on the same transaction was ongoing",
      ),
    );
    log(entry("Failed to send messages: This server is not the leader for that topic-partition"));
    expect(lines).toEqual([
      [
        "debug",
        "kafkajs: Failed to send messages: The producer attempted to update a transaction while another concurrent operation on the same transaction was ongoing",
      ],
      ["error", "kafkajs: Failed to send messages: This server is not the leader for that topic-partition"],
    ]);
  });
});

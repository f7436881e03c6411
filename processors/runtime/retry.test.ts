import { describe, expect, it } from "vitest";
import { createLogger } from "../../lib/log.ts";
import { isRetriable, ProcessorError, withRetry } from "./retry.ts";

const logger = createLogger("test", "silent");

describe("isRetriable", () => {
  it("classifies errors", () => {
    expect(isRetriable(new ProcessorError("x", false))).toBe(false);
    expect(isRetriable(new ProcessorError("x", true))).toBe(true);
    expect(isRetriable(Object.assign(new Error("conn"), { code: "08006" }))).toBe(true);
    expect(isRetriable(Object.assign(new Error("deadlock"), { code: "40P01" }))).toBe(true);
    expect(isRetriable(Object.assign(new Error("unique"), { code: "23505" }))).toBe(false);
    expect(isRetriable(Object.assign(new Error("refused"), { code: "ECONNREFUSED" }))).toBe(true);
    expect(isRetriable(Object.assign(new Error("s3"), { $metadata: { httpStatusCode: 503 } }))).toBe(true);
    expect(isRetriable(Object.assign(new Error("s3"), { $metadata: { httpStatusCode: 403 } }))).toBe(false);
    expect(isRetriable(new TypeError("bug"))).toBe(false);
  });
});

describe("withRetry", () => {
  it("retries transient errors and stops at terminal ones", async () => {
    let n = 0;
    const v = await withRetry(
      async () => {
        n++;
        if (n < 3) throw new ProcessorError("flaky", true);
        return 42;
      },
      { what: "t", logger, minTimeoutMs: 1, maxTimeoutMs: 2 },
    );
    expect(v).toBe(42);
    expect(n).toBe(3);
    let m = 0;
    await expect(
      withRetry(
        async () => {
          m++;
          throw new ProcessorError("bad", false);
        },
        { what: "t", logger, minTimeoutMs: 1 },
      ),
    ).rejects.toThrow("bad");
    expect(m).toBe(1);
  });
});

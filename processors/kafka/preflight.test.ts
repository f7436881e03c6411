import { createServer, type Server } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { checkKafkaAccess, KafkaAccessError } from "./preflight.ts";

let server: Server | undefined;
afterEach(() => {
  server?.close();
  server = undefined;
});

/** A plaintext listener that drops a connection on its first bytes, as Kafka does with a TLS ClientHello. */
async function plaintextListener(): Promise<number> {
  server = createServer((s) => s.once("data", () => s.destroy()));
  await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
  const a = server.address();
  return typeof a === "object" && a ? a.port : 0;
}

describe("checkKafkaAccess (preflight)", () => {
  it("KAFKA_TLS on against a listener that does not speak TLS: one line naming the setting", async () => {
    const port = await plaintextListener();
    const err = await checkKafkaAccess(`127.0.0.1:${port}`, { tls: {} }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(KafkaAccessError);
    expect((err as KafkaAccessError).message).toMatch(
      /^Kafka at 127\.0\.0\.1:\d+ does not answer TLS .*KAFKA_BOOTSTRAP_SERVERS must name the cluster's TLS listener/,
    );
    expect((err as KafkaAccessError).setting).toBe("KAFKA_BOOTSTRAP_SERVERS");
  });

  it("leaves a broker that does not answer at all to the clients' retries", async () => {
    const port = await plaintextListener();
    server?.close();
    await expect(checkKafkaAccess(`127.0.0.1:${port}`, { tls: {} })).resolves.toBeUndefined();
  });
});

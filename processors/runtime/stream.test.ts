/**
 * The consume loop on the in-memory Kafka (kafka/memory.ts): the order
 * transform -> sink -> commit, retries, a consumer that stops for good,
 * close and readiness, once for every processor built on it.
 */
import { afterEach, describe, expect, it } from "vitest";
import { createLogger } from "../../lib/log.ts";
import { MemoryBroker, MemoryTransport } from "../kafka/memory.ts";
import type { RecordBatch } from "../kafka/transport.ts";
import { Registry } from "./metrics.ts";
import { ProcessorError } from "./retry.ts";
import { Stream, type StreamOptions, type Sunk } from "./stream.ts";

const logger = createLogger("stream-test", "silent");

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A sink that keeps what it wrote, and can be held (`gate`) or made to fail (`failures`). */
class ListSink extends Stream<string[]> {
  readonly written: string[] = [];
  readonly committedValues: string[] = [];
  /** Errors the next sink calls throw, in order. */
  failures: Error[] = [];
  sinkCalls = 0;
  /** While set, a sink call waits for it. */
  gate: Promise<void> | undefined;

  protected transform(batch: RecordBatch): string[] | undefined {
    const values = batch.records.map((r) => r.value?.toString() ?? "");
    return values.includes("skip") ? undefined : values;
  }

  protected async sink(work: string[], batch: RecordBatch): Promise<Sunk> {
    this.sinkCalls += 1;
    await this.gate;
    const err = this.failures.shift();
    if (err) throw err;
    this.written.push(...work);
    const last = batch.records.at(-1)!;
    return { commit: [{ topic: batch.topic, partition: batch.partition, offset: last.offset + 1 }] };
  }

  protected override committed(work: string[]): void {
    this.committedValues.push(...work);
  }
}

describe("Stream: the consume loop", () => {
  let transport: MemoryTransport;
  let sinks: ListSink[] = [];
  afterEach(async () => {
    for (const s of sinks) await s.close();
    sinks = [];
  });

  async function setup(
    extra: Partial<StreamOptions> = {},
  ): Promise<{ sink: ListSink; send(...v: string[]): Promise<void> }> {
    transport = new MemoryTransport(new MemoryBroker({ logger }));
    const admin = await transport.admin();
    await admin.createTopics([{ name: "t", partitions: 1 }]);
    const producer = await transport.producer();
    const sink = new ListSink({
      transport,
      processor: "test",
      groupId: "g",
      topics: ["t"],
      consumer: { fromBeginning: true },
      metrics: new Registry("gavel_", { env: {} }),
      logger,
      ...extra,
    });
    sinks.push(sink);
    return {
      sink,
      send: (...values: string[]) =>
        producer.send([{ topic: "t", messages: values.map((value) => ({ key: null, value })) }]),
    };
  }

  const committed = async () => (await (await transport.admin()).groupOffsets("g", "t"))[0]?.offset ?? -1;

  it("commits a batch's offsets only once its sink is durable, then runs `committed`", async () => {
    const { sink, send } = await setup();
    let open: () => void = () => undefined;
    sink.gate = new Promise((r) => {
      open = r;
    });
    await sink.start();
    await send("a", "b");
    await until("the sink to be called", () => sink.sinkCalls === 1);
    await new Promise((r) => setTimeout(r, 50));
    expect(await committed(), "nothing committed while the sink works").toBe(-1);
    expect(sink.committedValues).toEqual([]);
    sink.gate = undefined;
    open();
    await until("the commit", async () => (await committed()) === 2);
    expect(sink.written).toEqual(["a", "b"]);
    expect(sink.committedValues).toEqual(["a", "b"]);
  });

  it("without in-place retries, a failed sink commits nothing and the consumer delivers the batch again", async () => {
    const { sink, send } = await setup();
    sink.failures = [new Error("database restarting")];
    await sink.start();
    await send("a");
    await until("the second delivery", () => sink.sinkCalls === 2);
    await until("the commit", async () => (await committed()) === 1);
    expect(sink.written).toEqual(["a"]);
    expect(sink.ready()).toEqual({ ok: true });
  });

  it("retries a transient sink failure in place, then commits once", async () => {
    const { sink, send } = await setup({ retry: { retries: 3, maxTimeoutMs: 10 } });
    sink.failures = [new Error("connection reset"), new Error("connection reset")];
    await sink.start();
    await send("a");
    await until("the commit", async () => (await committed()) === 1);
    expect(sink.sinkCalls).toBe(3);
    expect(sink.written).toEqual(["a"]);
    expect(sink.ready()).toEqual({ ok: true });
  });

  it("reports the last failure in readiness once retries give up, until a batch succeeds", async () => {
    const { sink, send } = await setup({ retry: { retries: 1, maxTimeoutMs: 10 } });
    // Not retriable: given up at once, the batch goes back to the consumer (fetched again after 200 ms).
    sink.failures = [new ProcessorError("relation silver.bids does not exist", false)];
    let open: () => void = () => undefined;
    await sink.start();
    await send("a");
    await until("the failure to show", () => !sink.ready().ok);
    expect(sink.ready()).toEqual({
      ok: false,
      reason: "last batch failed: relation silver.bids does not exist",
    });
    expect(await committed()).toBe(-1);
    sink.gate = new Promise((r) => {
      open = r;
    });
    await until("the batch again", () => sink.sinkCalls === 2);
    expect(sink.ready().ok, "still failed while the batch is written again").toBe(false);
    open();
    await until("ready again", () => sink.ready().ok);
    expect(await committed()).toBe(1);
  });

  it("moves past a batch the transform makes nothing of, without committing it", async () => {
    const { sink, send } = await setup();
    await sink.start();
    await send("skip");
    await new Promise((r) => setTimeout(r, 100));
    expect(sink.sinkCalls).toBe(0);
    expect(await committed()).toBe(-1);
    await send("a");
    await until("the next batch's commit", async () => (await committed()) === 2);
    expect(sink.written).toEqual(["a"]);
  });

  it("a consumer that stops for good is the stream's failure", async () => {
    const { sink } = await setup();
    await sink.start();
    expect(sink.failure()).toBeUndefined();
    const err = new Error("Not authorized to access group: g");
    transport.broker.crashGroup("g", err);
    expect(sink.failure()).toBe(err);
  });

  it("close lets the in-flight batch finish and commit, and takes nothing after it", async () => {
    const { sink, send } = await setup();
    expect(sink.ready()).toEqual({ ok: false, reason: "not consuming" });
    let open: () => void = () => undefined;
    sink.gate = new Promise((r) => {
      open = r;
    });
    await sink.start();
    expect(sink.ready()).toEqual({ ok: true });
    await send("a");
    await until("the sink to be called", () => sink.sinkCalls === 1);
    let closed = false;
    const closing = sink.close().then(() => {
      closed = true;
    });
    expect(sink.ready()).toEqual({ ok: false, reason: "not consuming" });
    await send("b");
    await new Promise((r) => setTimeout(r, 50));
    expect(closed, "close waits for the in-flight batch").toBe(false);
    open();
    await closing;
    expect(await committed()).toBe(1);
    expect(sink.written).toEqual(["a"]);
    expect(sink.ready()).toEqual({ ok: false, reason: "not consuming" });
  });

  it("close makes a retrying sink give up: the batch stays uncommitted", async () => {
    const { sink, send } = await setup({ retry: { retries: 50, maxTimeoutMs: 20 } });
    sink.failures = Array.from({ length: 50 }, () => new Error("connection refused"));
    await sink.start();
    await send("a");
    await until("a few attempts", () => sink.sinkCalls >= 2);
    await sink.close();
    expect(sink.sinkCalls).toBeLessThan(50);
    expect(await committed()).toBe(-1);
    expect(sink.written).toEqual([]);
  });
});

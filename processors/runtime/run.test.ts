/**
 * The process shell (run.ts) around a component: health answered from it,
 * the transport's client id, the shutdown order of a source and of a sink,
 * and what a failed start leaves behind.
 */
import { describe, expect, it, vi } from "vitest";
import { createLogger } from "../../lib/log.ts";
import { embeddedPipeline } from "../../test/embedded-pipeline.ts";
import type { TransportOptions } from "../kafka/client.ts";
import { MemoryBroker, MemoryTransport } from "../kafka/memory.ts";
import { type ProcessorConfig, processorConfigFrom } from "./config.ts";
import { type Component, type ProcessorSpec, startProcessor } from "./run.ts";
import type { Readiness } from "./stream.ts";

const logger = createLogger("run-test", "silent");
const memory = new MemoryTransport(new MemoryBroker({ logger }));
const created: TransportOptions[] = [];
vi.mock("../kafka/client.ts", () => ({
  createTransport: async (o: TransportOptions) => {
    created.push(o);
    return memory;
  },
}));

const pipeline = embeddedPipeline("runtest", 1);
const cfg: ProcessorConfig = processorConfigFrom(pipeline, {
  KAFKA_BOOTSTRAP_SERVERS: "embedded:9092",
  GAVEL_INSTANCE_ID: "pod-7",
  GAVEL_HTTP_PORT: "0",
  GAVEL_HTTP_HOST: "127.0.0.1",
});

interface Probe extends Component {
  failed: Error | undefined;
  isReady: boolean;
}

/** A component that records what happens to it, in order, into `log`. */
function probe(log: string[], over: Partial<Component> = {}): Probe {
  const c: Probe = {
    failed: undefined,
    isReady: false,
    start: async () => {
      log.push("start");
      c.isReady = true;
    },
    close: async () => {
      log.push("component closed");
    },
    ready: (): Readiness => (c.isReady ? { ok: true } : { ok: false, reason: "rebuilding partitions 0" }),
    failure: () => c.failed,
    ...over,
  };
  return c;
}

const get = async (url: string, path: string) => {
  const r = await fetch(`${url}${path}`);
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
};

describe("startProcessor", () => {
  it("serves health from the component, names its Kafka client after the process, and closes a sink before its server", async () => {
    const log: string[] = [];
    const component = probe(log);
    let serverUp = "";
    const spec: ProcessorSpec = {
      name: "silver-writer",
      kind: "sink",
      async build(w) {
        await w.transport();
        await w.admin();
        w.defer(async () => log.push("pool closed"));
        component.close = async () => {
          // The server still answers while the component finishes its batch.
          serverUp = (await get(running.url, "/healthz")).body.status as string;
          log.push("component closed");
        };
        return component;
      },
    };
    const running = await startProcessor(spec, cfg, { logger });
    expect(created.at(-1)?.clientId).toBe("gavel-silver-writer-pod-7");
    expect(await get(running.url, "/readyz")).toEqual({ status: 200, body: { status: "ready" } });
    component.isReady = false;
    expect(await get(running.url, "/readyz")).toEqual({
      status: 503,
      body: { status: "not ready", reason: "rebuilding partitions 0" },
    });
    expect((await get(running.url, "/healthz")).status).toBe(200);
    component.failed = new Error("consumer crashed");
    expect(running.failure()).toBe(component.failed);
    expect(await get(running.url, "/healthz")).toEqual({ status: 503, body: { status: "dead" } });
    component.failed = undefined;
    await running.close();
    expect(serverUp).toBe("ok");
    expect(log).toEqual(["start", "component closed", "pool closed"]);
    await expect(fetch(`${running.url}/healthz`)).rejects.toThrow();
  });

  it("closes a source's server (its intake) before the component", async () => {
    const log: string[] = [];
    let answered = 0;
    const spec: ProcessorSpec = {
      name: "ingest",
      kind: "source",
      async build(w) {
        return probe(log, {
          close: async () => {
            answered = await fetch(`${running.url}/healthz`).then(
              (r) => r.status,
              () => 0,
            );
            log.push("component closed");
          },
          ready: () => w.health.ready(),
        });
      },
    };
    const running = await startProcessor(spec, cfg, { logger, env: {} });
    await running.close();
    expect(answered, "the server was closed first").toBe(0);
    expect(log).toEqual(["start", "component closed"]);
  });

  it("a failed start closes the server and releases what the build acquired, then throws", async () => {
    const log: string[] = [];
    const spec: ProcessorSpec = {
      name: "bid-processor",
      kind: "transform",
      async build(w) {
        w.defer(async () => log.push("watcher stopped"));
        return probe(log, {
          start: async () => {
            throw new Error("topics p.bids do not exist");
          },
        });
      },
    };
    await expect(startProcessor(spec, cfg, { logger })).rejects.toThrow("topics p.bids do not exist");
    expect(log).toEqual(["watcher stopped"]);
  });
});

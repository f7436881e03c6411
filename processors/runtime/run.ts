/**
 * The process shell of every processor (`gavel processor <name>`): a
 * processor is a component (a source, a transform or a sink) and the shell
 * owns what is the same for all of them: the configuration, the logger, the
 * metrics registry, the Kafka transport (client id
 * `gavel-<name>-<instanceId>`) and admin client, the HTTP server with
 * `/healthz`, `/readyz` and `/metrics` answered from the component, the
 * signals, exit on a consumer that stopped for good, and the shutdown order.
 */
import { createLogger, type Logger } from "../../lib/log.ts";
import { createTransport } from "../kafka/client.ts";
import type { Admin, Transport } from "../kafka/transport.ts";
import { kafkaBrokers, type ProcessorConfig } from "./config.ts";
import { Registry } from "./metrics.ts";
import { type App, createServer, type HealthState } from "./server.ts";
import { exitOnFailure, handleSignals } from "./shell.ts";
import type { Readiness } from "./stream.ts";

/** The processors, by their user-facing names (`gavel processor <name>`, client ids, logs). */
export type ProcessorName = "ingest" | "bid-processor" | "silver-writer" | "bronze-archiver";

/** A processor as the shell runs it. */
export interface Component {
  /** Starts consuming (or serving); the HTTP server already listens. */
  start(): Promise<void>;
  /** Stops intake, finishes or abandons the in-flight work, commits only what is done. */
  close(): Promise<void>;
  ready(): Readiness;
  /** Set when a consumer stopped for good: the process exits 1 to be restarted. */
  failure?(): Error | undefined;
  /** A source's own HTTP server (its API beside the shell's health and metrics routes); default: the shell's. */
  readonly server?: App;
  /** Fields of the line the shell logs once the component runs (its consumer group, ingest's authentication). */
  readonly logged?: Readonly<Record<string, unknown>>;
}

/** What the shell gives a processor to build its component from. */
export interface Wiring {
  readonly cfg: ProcessorConfig;
  readonly env: NodeJS.ProcessEnv;
  readonly logger: Logger;
  readonly metrics: Registry;
  /** `/healthz` and `/readyz`, answered from the component (a source builds its server with it). */
  readonly health: HealthState;
  /** The process's Kafka transport, created on first use (the secured-cluster check runs then). */
  transport(): Promise<Transport>;
  /** The process's admin client, opened on first use, closed at shutdown. */
  admin(): Promise<Admin>;
  /** Closes a resource at shutdown, after the component and the HTTP server (the last registered first). */
  defer(close: () => Promise<unknown>): void;
}

/** One processor: its name and how its component is built. */
export interface ProcessorSpec {
  readonly name: ProcessorName;
  /**
   * A source's intake is its HTTP server, closed before the component (in-flight
   * requests get their broker ack); a transform's or a sink's server stays up
   * until the component has finished its batch (health and metrics meanwhile).
   */
  readonly kind: "source" | "transform" | "sink";
  build(w: Wiring): Promise<Component>;
}

/** A started processor. */
export interface RunningProcessor {
  readonly url: string;
  close(): Promise<void>;
  /** Set when a Kafka consumer stopped for good (see `exitOnFailure`). */
  failure(): Error | undefined;
}

export interface StartOptions {
  /** Environment of the processor's own settings (default process.env). */
  readonly env?: NodeJS.ProcessEnv;
  /** The Kafka transport (default: `createTransport` on KAFKA_BOOTSTRAP_SERVERS). */
  readonly transport?: Transport;
  readonly logger?: Logger;
  readonly metrics?: Registry;
}

/** Starts a processor: its component behind the shell's HTTP server. Resolves once it listens and consumes. */
export async function startProcessor(
  spec: ProcessorSpec,
  cfg: ProcessorConfig,
  opts: StartOptions = {},
): Promise<RunningProcessor> {
  const logger = opts.logger ?? createLogger(spec.name);
  const metrics = opts.metrics ?? new Registry();
  let component: Component | undefined;
  let startFailed = false;
  let stopping = false;
  const health: HealthState = {
    live: () => !startFailed && !component?.failure?.(),
    ready: () => {
      if (stopping) return { ok: false, reason: "stopping" };
      return component ? component.ready() : { ok: false, reason: "starting" };
    },
  };
  let transport: Promise<Transport> | undefined = opts.transport
    ? Promise.resolve(opts.transport)
    : undefined;
  let admin: Promise<Admin> | undefined;
  const deferred: (() => Promise<unknown>)[] = [];
  const wiring: Wiring = {
    cfg,
    env: opts.env ?? process.env,
    logger,
    metrics,
    health,
    transport: () => {
      transport ??= createTransport({
        brokers: kafkaBrokers(cfg),
        clientId: `gavel-${spec.name}-${cfg.instanceId}`,
        logger,
      });
      return transport;
    },
    admin: () => {
      admin ??= wiring.transport().then((t) => t.admin());
      return admin;
    },
    defer: (close) => {
      deferred.push(close);
    },
  };
  /** The component's resources in reverse order of acquisition, then the admin client they may have used. */
  const release = async () => {
    for (const close of deferred.reverse()) await close();
    await (await admin?.catch(() => undefined))?.close();
  };
  const built = await spec.build(wiring).catch(async (err: unknown) => {
    await release().catch(() => undefined);
    throw err;
  });
  component = built;
  const server = built.server ?? createServer({ logger, metrics, health });
  let url: string;
  try {
    url = await server.listen({ port: cfg.port, host: cfg.host });
    await built.start();
  } catch (err) {
    startFailed = true;
    await server.close();
    await release();
    throw err;
  }
  logger.info({ url, ...built.logged }, `${spec.name} ${spec.kind === "source" ? "listening" : "running"}`);
  return {
    url,
    failure: () => built.failure?.(),
    close: async () => {
      stopping = true;
      if (spec.kind === "source") {
        await server.close();
        await built.close();
      } else {
        await built.close();
        await server.close();
      }
      await release();
    },
  };
}

/** `gavel processor <name>`: starts it, then stops gracefully on SIGTERM/SIGINT and exits 1 on a consumer failure. */
export async function runProcessor(spec: ProcessorSpec, cfg: ProcessorConfig): Promise<void> {
  const logger = createLogger(spec.name);
  const running = await startProcessor(spec, cfg, { logger });
  handleSignals({ logger, processor: running });
  exitOnFailure({ logger, processor: running, failure: running.failure });
}

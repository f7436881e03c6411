import type { ChildProcess } from "node:child_process";
import { afterEach } from "vitest";
import type { Transport } from "../../processors/kafka/transport.ts";
import { type Dataset, type GenerateOptions, generateDataset } from "../generate/dataset.ts";
import { sendToKafka } from "../generate/sinks.ts";
import {
  type Env,
  kill9,
  type Running,
  setupEnv,
  spawnProcessor,
  startBidProcessor,
  startBronze,
  startSilverWriter,
} from "./processors-harness.ts";

/** A processor run in this process; `bid-processor:<id>` names the bid-processor's instance. */
export type InProcess = "bid-processor" | `bid-processor:${string}` | "silver-writer" | "bronze-archiver";

/**
 * What one fault or outcome scenario starts, stopped after each test: the
 * processors run in this process (`running`), those spawned as child
 * processes so they can be killed -9 (`children`), and the environment
 * (topics, schema, bucket). processors-faults and processors-outcomes run
 * the same kinds of scenarios; this keeps their bookkeeping in one place.
 */
export class Scenario {
  env: Env | undefined;
  readonly running: Running[] = [];
  readonly children: ChildProcess[] = [];

  /** A fresh environment for the test (see setupEnv). */
  async setup(label: string, partitions?: number): Promise<Env> {
    this.env = await setupEnv(label, partitions);
    return this.env;
  }

  /** Starts processors in this process, one after the other; they are stopped after the test unless `stop` stops one first. */
  async start(env: Env, ...names: readonly InProcess[]): Promise<Running[]> {
    const started: Running[] = [];
    for (const name of names) {
      let r: Running;
      if (name === "silver-writer") r = await startSilverWriter(env);
      else if (name === "bronze-archiver") r = await startBronze(env);
      else {
        const id = name.split(":")[1];
        r = await (id === undefined ? startBidProcessor(env) : startBidProcessor(env, id));
      }
      this.running.push(r);
      started.push(r);
    }
    return started;
  }

  /** Stops a processor `start` started (a replica leaving mid-stream). */
  async stop(r: Running | undefined): Promise<void> {
    const i = r === undefined ? -1 : this.running.indexOf(r);
    if (r === undefined || i < 0) throw new Error("stop: not a processor this scenario started");
    this.running.splice(i, 1);
    await r.close();
  }

  /** `gavel processor <name>` as a child process, killed after the test. */
  spawn(env: Env, name: string): ChildProcess {
    const child = spawnProcessor(env, name);
    this.children.push(child);
    return child;
  }

  /** kill -9 of `child`, a pause of `pauseMs`, then the same processor again. */
  async respawn(env: Env, child: ChildProcess, name: string, pauseMs = 0): Promise<ChildProcess> {
    await kill9(child);
    if (pauseMs > 0) await sleep(pauseMs);
    return this.spawn(env, name);
  }

  async cleanup(): Promise<void> {
    for (const c of this.children.splice(0)) await kill9(c);
    for (const r of this.running.splice(0)) await r.close().catch(() => undefined);
    await this.env?.cleanup();
    this.env = undefined;
  }
}

/** A Scenario cleaned up after each test of the describe block that calls this. */
export function scenario(): Scenario {
  const s = new Scenario();
  afterEach(() => s.cleanup());
  return s;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Sleeps until the wall-clock time `at` (epoch ms); at once when it has passed. */
export const sleepUntil = (at: number): Promise<void> => sleep(Math.max(0, at - Date.now()));

/** Sends `ds` to the environment's input topics through a producer of `t`, as `gavel generate --to kafka` does. */
export async function sendDataset(env: Env, ds: Dataset, t: Transport): Promise<void> {
  const producer = await t.producer();
  try {
    await sendToKafka(
      producer,
      { auctions: env.topics.auctions.name, users: env.topics.users.name, bids: env.topics.bids.name },
      ds,
    );
  } finally {
    await producer.close();
  }
}

/**
 * A dataset whose schedule starts in 2 s, its ids prefixed with the
 * environment's name and `tag`: apart from every other dataset the test
 * sends to the same environment.
 */
export function datasetFor(
  env: Env,
  tag: string,
  o: Pick<GenerateOptions, "seed" | "auctions" | "bids" | "rate">,
): Dataset {
  return generateDataset({ ...o, startMs: Date.now() + 2_000, prefix: `${env.name}-${tag}` });
}

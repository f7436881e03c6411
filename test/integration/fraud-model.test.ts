/**
 * The fraud anomaly model on real services (issue #17): the bid-processor
 * logs each scored bid's features, the silver-writer stores them, `gavel
 * fraud train` trains an Isolation Forest on them and writes it to S3, the
 * running bid-processor picks it up without a restart (refusing a corrupt
 * object beside it), and from the model's activation time bids are scored
 * with it: exactly as a replay of the log with the same model scores them,
 * across a kill -9 and restart of the bid-processor.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeModel, FEATURE_NAMES, FraudModels, modelKey } from "../../processors/fraud/model.ts";
import { generateDataset } from "../generate/dataset.ts";
import { sendToKafka } from "../generate/sinks.ts";
import { diffOutcomes, liveOutcomes, oracleOutcomes, size } from "./outcomes.ts";
import {
  type Env,
  kill9,
  REPO,
  type Running,
  setupEnv,
  silverCounts,
  startSilverWriter,
  transport,
  until,
} from "./processors-harness.ts";

const run = promisify(execFile);

describe("fraud model: trained from silver, loaded live, applied by record time", () => {
  let env: Env;
  let file: string;
  const running: Running[] = [];
  const children: ChildProcess[] = [];
  let logs = "";

  /** The real `gavel processor bid-processor` (it loads models from S3), logs kept. */
  function spawnBidProcessor(): ChildProcess {
    const child = spawn(
      process.execPath,
      [join(REPO, "bin/gavel"), "processor", "bid-processor", "-f", file],
      {
        env: { ...env.childEnv, LOG_LEVEL: "info" },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    const keep = (d: Buffer) => {
      logs += d.toString();
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    children.push(child);
    return child;
  }

  beforeAll(async () => {
    env = await setupEnv("fraud");
    // Models: from 100 scored bids, active 60 s after training, looked for every 5 s.
    const p = structuredClone(env.pipeline);
    p.spec.fraud.model = { ...p.spec.fraud.model, minRows: 100, activationDelaySeconds: 60, pollSeconds: 5 };
    file = join(tmpdir(), `${env.name}-model.json`);
    writeFileSync(file, JSON.stringify(p));
  });
  afterAll(async () => {
    for (const c of children) await kill9(c);
    for (const r of running) await r.close().catch(() => undefined);
    await env?.cleanup();
  });

  it("features reach silver, training is deterministic, the stream scores by the model as a replay does, across a crash", async () => {
    const bp = spawnBidProcessor();
    running.push(await startSilverWriter(env));
    const producer = await transport().producer();
    const topics = {
      auctions: env.topics.auctions.name,
      users: env.topics.users.name,
      bids: env.topics.bids.name,
    };

    // 1. Rules only: the scored bids and their features land in silver.
    const a = generateDataset({ seed: 31, auctions: 20, bids: 1500, rate: 500, startMs: Date.now() + 2_000 });
    await sendToKafka(producer, topics, a);
    await until("silver to hold the first dataset", async () => {
      const c = await silverCounts(env);
      return c.bids + c.rejections >= a.bids.length && c.transactions >= a.auctions.length;
    });
    const feats = await env.pool.query<{ n: number; with: number; dims: number | null }>(
      "SELECT count(*)::int AS n, count(fraud_features)::int AS with, max(array_length(fraud_features, 1)) AS dims FROM silver.bids",
    );
    expect(feats.rows[0]?.n).toBeGreaterThan(100);
    expect(feats.rows[0]?.with).toBe(feats.rows[0]?.n);
    expect(feats.rows[0]?.dims).toBe(FEATURE_NAMES.length);

    // 2. Train twice: the same silver gives the same forest and calibration
    // (each run is its own version: its training time is part of it).
    const now = new Date().toISOString();
    const childEnv = { ...env.childEnv, LOG_LEVEL: "error" };
    const train = async () =>
      JSON.parse(
        (
          await run(
            process.execPath,
            [join(REPO, "bin/gavel"), "fraud", "train", "-f", file, "--now", now, "--json"],
            { env: childEnv },
          )
        ).stdout,
      ) as { status: string; key: string; model: { version: string; rows: number; activeFrom: string } };
    const first = await train();
    expect(first.status).toBe("trained");
    expect(first.key).toBe(modelKey(env.prefix, first.model.version));
    expect(first.model.rows).toBe(feats.rows[0]?.n);
    const second = await train();
    expect(second.model.version).not.toBe(first.model.version);
    const bodies = [await getObject(first.key), await getObject(second.key)];
    const [m1, m2] = bodies.map((b) => JSON.parse(b) as Record<string, unknown>);
    for (const k of ["forest", "calibration", "features", "window", "rows", "seed"])
      expect(m2?.[k], k).toEqual(m1?.[k]);
    const models = new FraudModels();
    for (const body of bodies) {
      const d = decodeModel(body);
      if (!d.ok) throw new Error(d.detail);
      models.add(d.value);
    }
    // Active from publication + the delay, never from the window's end alone.
    const activations = [first, second].map((t) => Date.parse(t.model.activeFrom));
    for (const at of activations) expect(at).toBeGreaterThanOrEqual(Date.parse(now) + 60_000);
    const activeFromMs = Math.max(...activations);

    // A corrupt object beside it is refused; the processor goes on.
    const corrupt = modelKey(env.prefix, "20261201T000000Z-0badf00d");
    await env.s3.send(
      new PutObjectCommand({ Bucket: env.bucket, Key: corrupt, Body: (bodies[0] ?? "").slice(0, 300) }),
    );
    await until(
      "the bid-processor to load the model and refuse the corrupt one",
      async () => {
        return (
          logs.includes(`fraud model ${first.model.version} loaded`) &&
          logs.includes("0badf00d.json refused: not JSON")
        );
      },
      30_000,
    );
    expect(bp.exitCode).toBeNull();

    // 3. Bids from before the model's activation to after it; a kill -9 and
    // a restart a few seconds after activation.
    const b = generateDataset({
      seed: 32,
      auctions: 20,
      bids: 3000,
      rate: 100,
      startMs: activeFromMs - 12_000,
    });
    const sending = sendToKafka(producer, topics, b);
    const killAt = activeFromMs + 6_000;
    await new Promise((r) => setTimeout(r, Math.max(0, killAt - Date.now())));
    await kill9(bp);
    expect(logs).not.toMatch(/after it became active/);
    spawnBidProcessor();
    await sending;
    await producer.close();

    const records = a.bids.length + b.bids.length + a.auctions.length + b.auctions.length;
    let diff: string[] = [];
    await until(
      "every outcome to equal the replay with the model",
      async () => {
        const live = await liveOutcomes(env);
        if (size(live) < records) return false;
        diff = diffOutcomes(await oracleOutcomes(env, Date.now(), true, models), live);
        return diff.length === 0;
      },
      180_000,
    ).catch(() => undefined);
    expect(diff, "outcomes with the model (scores included) differ from the replay").toEqual([]);

    // The model did score: alerts name the anomaly signal, only for bids arriving after activation.
    const alerts = await readAlerts();
    const anomalous = alerts.filter((x) => x.signals.some((s) => s.name === "anomaly"));
    expect(anomalous.length).toBeGreaterThan(0);
    const bidTimes = new Map(b.bids.filter((x) => x.bid).map((x) => [x.bid!.bid_id, x.sendAtMs]));
    for (const x of anomalous)
      expect(bidTimes.get(x.bid_id) ?? 0).toBeGreaterThanOrEqual(Math.min(...activations) - 1_000);
    // and without it the replay would have scored differently
    const rulesOnly = await oracleOutcomes(env, Date.now(), true);
    expect(diffOutcomes(rulesOnly, await liveOutcomes(env)).length).toBeGreaterThan(0);
  }, 360_000);

  async function getObject(key: string): Promise<string> {
    const r = await env.s3.send(new GetObjectCommand({ Bucket: env.bucket, Key: key }));
    return (await r.Body?.transformToString("utf8")) ?? "";
  }

  async function readAlerts(): Promise<{ bid_id: string; signals: { name: string }[] }[]> {
    const { readTopic } = await import("./processors-harness.ts");
    return (await readTopic(env, env.topics["fraud-alerts"].name)).map(
      (r) => JSON.parse(r.value?.toString("utf8") ?? "{}") as { bid_id: string; signals: { name: string }[] },
    );
  }
});

import { writeFile } from "node:fs/promises";
import { SingleBar } from "cli-progress";
import { loadPipelineFile, topicNames } from "../../api/v1alpha1/pipeline.ts";
import type { GenerateCliOptions } from "../../cli/generate.ts";
import { createLogger } from "../../lib/log.ts";
import { createTransport } from "../../processors/kafka/client.ts";
import { kafkaBrokers, processorConfigFrom } from "../../processors/runtime/config.ts";
import { type BidKind, bidLabels, generateDataset } from "./dataset.ts";
import { type SendResult, sendToHttp, sendToKafka } from "./sinks.ts";

export interface GenerateSummary extends SendResult {
  readonly seed: number;
  readonly startMs: number;
  readonly start: string;
  readonly prefix: string;
  readonly to: "kafka" | "http";
  readonly auctions: number;
  readonly users: number;
  readonly bids: number;
  readonly counts: Readonly<Record<BidKind, number>>;
  readonly elapsedMs: number;
}

function parseStart(s: string | undefined): number {
  if (s === undefined) return Math.ceil((Date.now() + 1000) / 1000) * 1000;
  const n = /^\d+$/.test(s) ? Number(s) : Date.parse(s);
  if (!Number.isFinite(n)) throw new Error(`--start: "${s}" is neither RFC 3339 nor epoch milliseconds`);
  return n;
}

export async function runGenerate(opts: GenerateCliOptions): Promise<GenerateSummary> {
  const pipeline = await loadPipelineFile(opts.file);
  const startMs = parseStart(opts.start);
  const prefix = opts.prefix ?? `g${opts.seed}`;
  const ds = generateDataset({
    seed: opts.seed,
    auctions: opts.auctions,
    bids: opts.bids,
    startMs,
    rate: opts.rate,
    prefix,
    lean: true,
    ...(opts.users === undefined ? {} : { users: opts.users }),
  });
  // Brokers refuse record timestamps more than log.message.timestamp.after.max.ms (default 1 h)
  // ahead of their clock; a paced run waits for each record's time, an unpaced one does not.
  if (opts.to === "kafka" && opts.rate === 0 && ds.startMs + ds.durationMs > Date.now() + 3_300_000) {
    throw new Error(
      `--rate 0 would write record timestamps up to ${new Date(ds.startMs + ds.durationMs).toISOString()}, more than an hour ahead: Kafka refuses them. Use a --start closer to now or a --rate`,
    );
  }
  if (opts.labels)
    await writeFile(
      opts.labels,
      bidLabels(ds)
        .map((l) => `${JSON.stringify(l)}\n`)
        .join(""),
    );
  const bar = new SingleBar({
    stream: process.stderr,
    format: "bids {bar} {percentage}% {value}/{total} | {eta_formatted} left",
    hideCursor: true,
  });
  const show = opts.progress && process.stderr.isTTY === true;
  if (show) bar.start(ds.bids.length, 0);
  const began = Date.now();
  const hooks = { progress: (n: number) => show && bar.update(n), unpaced: opts.rate === 0 };
  let result: SendResult;
  try {
    if (opts.to === "kafka") {
      const cfg = processorConfigFrom(pipeline);
      const transport = await createTransport({
        brokers: kafkaBrokers(cfg),
        clientId: "gavel-generate",
        logger: createLogger("generate"),
      });
      const producer = await transport.producer({ compression: false });
      const t = topicNames(pipeline);
      try {
        result = await sendToKafka(
          producer,
          { auctions: t.auctions.name, users: t.users.name, bids: t.bids.name },
          ds,
          hooks,
        );
      } finally {
        await producer.close();
      }
    } else {
      result = await sendToHttp(
        { url: opts.url, ...(opts.apiKey ? { apiKey: opts.apiKey } : {}) },
        ds,
        hooks,
      );
    }
  } finally {
    if (show) bar.stop();
  }
  return {
    seed: opts.seed,
    startMs,
    start: new Date(startMs).toISOString(),
    prefix,
    to: opts.to,
    auctions: ds.auctions.length,
    users: ds.users.length,
    bids: ds.bids.length,
    counts: ds.counts,
    elapsedMs: Date.now() - began,
    ...result,
  };
}

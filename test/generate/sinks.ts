/**
 * Where generated records go: straight to the pipeline's Kafka topics (as
 * ingest would write them), or through the ingest HTTP API. Both replay the
 * dataset's schedule in real time (`sendAtMs`), so event times, ingest times
 * and the processors' clocks agree.
 */
import type { AuctionEvent, UserEvent } from "../../api/events/types.ts";
import type { Producer, TopicMessages } from "../../processors/kafka/transport.ts";
import type { Dataset, GeneratedBid } from "./dataset.ts";

export interface SendResult {
  /** Bid records delivered (Kafka: acknowledged; HTTP: 202). */
  sent: number;
  /** HTTP only: indexes of records ingest refused with 400 (malformed; nothing produced). */
  rejectedAtIngest: number[];
  /** Records that could not be delivered after retries. */
  failed: number;
  /** How far behind schedule the sink fell at worst, ms. */
  maxLagMs: number;
}

export interface SinkHooks {
  /** Called after each delivered (or refused) group of bid records. */
  progress?(done: number): void;
  /** Wall clock; injectable for tests. */
  now?(): number;
  sleep?(ms: number): Promise<void>;
  /** Send as fast as possible instead of following the schedule. */
  unpaced?: boolean;
  /** Most records per send. Default 500. */
  batchSize?: number;
}

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Groups due bids (sendAtMs <= now) into batches and waits for the schedule. */
async function paced(
  bids: readonly GeneratedBid[],
  hooks: SinkHooks,
  send: (batch: GeneratedBid[]) => Promise<void>,
  isSplit: (batch: GeneratedBid[], next: GeneratedBid) => boolean = () => false,
): Promise<number> {
  const now = hooks.now ?? Date.now;
  const sleep = hooks.sleep ?? defaultSleep;
  const max = hooks.batchSize ?? 500;
  let i = 0;
  let maxLag = 0;
  while (i < bids.length) {
    const first = bids[i]!;
    if (!hooks.unpaced) {
      const wait = first.sendAtMs - now();
      if (wait > 0) await sleep(wait);
      maxLag = Math.max(maxLag, now() - first.sendAtMs);
    }
    const t = now();
    const batch: GeneratedBid[] = [first];
    i += 1;
    while (i < bids.length && batch.length < max && (hooks.unpaced || bids[i]!.sendAtMs <= t)) {
      if (isSplit(batch, bids[i]!)) break;
      batch.push(bids[i]!);
      i += 1;
    }
    await send(batch);
    hooks.progress?.(i);
  }
  return maxLag;
}

export interface KafkaTopicsForGenerate {
  readonly auctions: string;
  readonly users: string;
  readonly bids: string;
}

/** Writes users, auctions, then the bids on schedule, keyed like ingest does (auction_id / user_id). */
export async function sendToKafka(
  producer: Producer,
  topics: KafkaTopicsForGenerate,
  ds: Dataset,
  hooks: SinkHooks = {},
): Promise<SendResult> {
  const chunk = <T>(xs: readonly T[], n: number): T[][] => {
    const out: T[][] = [];
    for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
    return out;
  };
  for (const part of chunk(ds.users, 1000)) {
    await producer.send([
      { topic: topics.users, messages: part.map((u) => ({ key: u.user_id, value: JSON.stringify(u) })) },
    ]);
  }
  for (const part of chunk(ds.auctions, 1000)) {
    await producer.send([
      {
        topic: topics.auctions,
        messages: part.map((a) => ({ key: a.auction_id, value: JSON.stringify(a) })),
      },
    ]);
  }
  let sent = 0;
  const maxLagMs = await paced(ds.bids, hooks, async (batch) => {
    const tm: TopicMessages = {
      topic: topics.bids,
      messages: batch.map((b) => ({ key: b.key, value: b.raw, timestamp: b.sendAtMs })),
    };
    await producer.send([tm]);
    sent += batch.length;
  });
  return { sent, rejectedAtIngest: [], failed: 0, maxLagMs };
}

export interface HttpTarget {
  /** Ingest base URL, e.g. http://127.0.0.1:8080 */
  readonly url: string;
  readonly apiKey?: string;
  /** Retries of a 503/network failure per request. Default 20. */
  readonly retries?: number;
}

async function post(
  target: HttpTarget,
  path: string,
  body: string,
  sleep: (ms: number) => Promise<void>,
): Promise<{ status: number; text: string }> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (target.apiKey) headers.authorization = `Bearer ${target.apiKey}`;
  const retries = target.retries ?? 20;
  let lastErr = "";
  for (let attempt = 0; attempt <= retries; attempt++) {
    try {
      const res = await fetch(new URL(path, target.url), { method: "POST", headers, body });
      const text = await res.text();
      if (res.status !== 503 && res.status !== 502 && res.status !== 504) return { status: res.status, text };
      const after = Number(res.headers.get("retry-after") ?? "1");
      lastErr = `${res.status} ${text.slice(0, 200)}`;
      await sleep(Math.min(10_000, (Number.isFinite(after) ? after : 1) * 1000));
    } catch (err) {
      lastErr = (err as Error).message;
      await sleep(Math.min(5_000, 200 * 2 ** attempt));
    }
  }
  throw new Error(`POST ${path} failed after ${retries + 1} attempts: ${lastErr}`);
}

/**
 * Sends through ingest: users and auctions one by one, well-formed bids in
 * batches (`POST /v1/bids:batch`, never two records with the same bid_id in
 * one batch: the batch endpoint refuses that), and each malformed record
 * alone to `POST /v1/bids` so its 400 does not take good bids down with it.
 */
export async function sendToHttp(
  target: HttpTarget,
  ds: Dataset,
  hooks: SinkHooks = {},
): Promise<SendResult> {
  const sleep = hooks.sleep ?? defaultSleep;
  const expect2xx = async (path: string, body: AuctionEvent | UserEvent) => {
    const r = await post(target, path, JSON.stringify(body), sleep);
    if (r.status !== 202) throw new Error(`POST ${path} answered ${r.status}: ${r.text.slice(0, 300)}`);
  };
  const parallel = async <T>(xs: readonly T[], n: number, f: (x: T) => Promise<void>) => {
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(n, xs.length) }, async () => {
        while (next < xs.length) await f(xs[next++]!);
      }),
    );
  };
  await parallel(ds.users, 8, (u) => expect2xx("/v1/users", u));
  await parallel(ds.auctions, 8, (a) => expect2xx("/v1/auctions", a));

  const result: SendResult = { sent: 0, rejectedAtIngest: [], failed: 0, maxLagMs: 0 };
  result.maxLagMs = await paced(
    ds.bids,
    hooks,
    async (batch) => {
      if (batch.length === 1 && batch[0]!.malformed) {
        const b = batch[0]!;
        const r = await post(target, "/v1/bids", b.raw, sleep);
        if (r.status === 202) result.sent += 1;
        else if (r.status === 400) result.rejectedAtIngest.push(b.index);
        else {
          result.failed += 1;
          throw new Error(`POST /v1/bids answered ${r.status}: ${r.text.slice(0, 300)}`);
        }
        return;
      }
      const body = `{"bids":[${batch.map((b) => b.raw).join(",")}]}`;
      const r = await post(target, "/v1/bids:batch", body, sleep);
      if (r.status !== 202) {
        result.failed += batch.length;
        throw new Error(`POST /v1/bids:batch answered ${r.status}: ${r.text.slice(0, 500)}`);
      }
      result.sent += batch.length;
    },
    (batch, next) => {
      // malformed records travel alone; a bid_id appears at most once per batch
      if (next.malformed || batch[0]!.malformed) return true;
      return batch.some((b) => b.bid?.bid_id === next.bid?.bid_id);
    },
  );
  return result;
}

/**
 * A small HTTP load generator on node:http with keep-alive connections.
 * Two shapes: a closed loop (N workers, each sends the next request when its
 * previous one answered: the server's maximum throughput and its latency at
 * that load) and an open loop at a fixed offered rate (requests leave on
 * schedule whether or not earlier ones answered, bounded by a cap on
 * requests in flight, so an overloaded server shows up as latency and as an
 * offered rate below the target). Every run is bounded in requests and
 * time, and only talks to 127.0.0.1.
 *
 * Why not autocannon: it would be one more dependency tree for two loops
 * this size, and the open loop needs per-request bodies (fresh bid ids and
 * placed_at) built at send time.
 */
import http from "node:http";

export interface PostResult {
  readonly status: number;
  readonly ms: number;
}

export class HttpClient {
  readonly #agent: http.Agent;
  readonly #port: number;

  constructor(url: string, maxSockets: number) {
    const u = new URL(url);
    if (u.hostname !== "127.0.0.1" && u.hostname !== "localhost")
      throw new Error(`the load generator only targets 127.0.0.1, not ${u.hostname}`);
    this.#port = Number(u.port);
    this.#agent = new http.Agent({ keepAlive: true, maxSockets });
  }

  post(path: string, body: string): Promise<PostResult> {
    const started = performance.now();
    return new Promise((resolve) => {
      const req = http.request(
        {
          host: "127.0.0.1",
          port: this.#port,
          path,
          method: "POST",
          agent: this.#agent,
          headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
        },
        (res) => {
          res.resume();
          res.on("end", () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - started }));
        },
      );
      req.on("error", () => resolve({ status: 0, ms: performance.now() - started }));
      req.end(body);
    });
  }

  close(): void {
    this.#agent.destroy();
  }
}

export interface LoopResult {
  readonly requests: number;
  /** Answers 2xx. */
  readonly ok: number;
  readonly errors: number;
  /** Latencies of 2xx answers, ms, ascending. */
  readonly latencies: number[];
  readonly elapsedMs: number;
}

/** `concurrency` workers post `body(i)` back to back for `durationMs` (at most `maxRequests`). */
export async function closedLoop(
  client: HttpClient,
  opts: {
    path: string;
    concurrency: number;
    durationMs: number;
    maxRequests: number;
    body: (i: number) => string;
  },
): Promise<LoopResult> {
  const started = performance.now();
  const end = started + opts.durationMs;
  let next = 0;
  let ok = 0;
  let errors = 0;
  const latencies: number[] = [];
  const worker = async () => {
    while (performance.now() < end && next < opts.maxRequests) {
      const r = await client.post(opts.path, opts.body(next++));
      if (r.status >= 200 && r.status < 300) {
        ok++;
        latencies.push(r.ms);
      } else errors++;
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  latencies.sort((a, b) => a - b);
  return { requests: ok + errors, ok, errors, latencies, elapsedMs: performance.now() - started };
}

export interface PacedResult {
  /** Bids sent (in requests that got any answer). */
  readonly sent: number;
  /** Bids in 2xx answers. */
  readonly accepted: number;
  readonly errors: number;
  /** Bids actually offered per second over the run (below the target when the cap on in-flight requests bit). */
  readonly offeredPerS: number;
  readonly elapsedMs: number;
}

/**
 * Offers `rate` bids/s for `durationMs`: every `tickMs` the bids due so far
 * leave in requests of at most `batchSize` (the batch endpoint), with at
 * most `maxInFlight` requests outstanding. `body(first, count, nowMs)` builds
 * a request of bids first..first+count-1.
 */
export async function pacedLoop(
  client: HttpClient,
  opts: {
    path: string;
    rate: number;
    durationMs: number;
    batchSize: number;
    maxInFlight: number;
    tickMs?: number;
    body: (first: number, count: number, nowMs: number) => string;
  },
): Promise<PacedResult> {
  const tick = opts.tickMs ?? 5;
  const t0 = performance.now();
  const total = Math.round((opts.rate * opts.durationMs) / 1000);
  let next = 0;
  let inFlight = 0;
  let sent = 0;
  let accepted = 0;
  let errors = 0;
  const pending = new Set<Promise<void>>();
  while (next < total) {
    const elapsed = performance.now() - t0;
    if (elapsed > opts.durationMs * 2) break; // far behind schedule: stop offering
    const due = Math.min(total, Math.floor((opts.rate * elapsed) / 1000));
    while (next < due && inFlight < opts.maxInFlight) {
      const count = Math.min(opts.batchSize, due - next);
      const first = next;
      next += count;
      inFlight++;
      const p = client.post(opts.path, opts.body(first, count, Date.now())).then((r) => {
        inFlight--;
        sent += count;
        if (r.status >= 200 && r.status < 300) accepted += count;
        else errors++;
      });
      pending.add(p);
      void p.finally(() => pending.delete(p));
    }
    await new Promise((r) => setTimeout(r, tick));
  }
  await Promise.all(pending);
  const elapsedMs = performance.now() - t0;
  return {
    sent,
    accepted,
    errors,
    offeredPerS: (next / Math.max(elapsedMs, opts.durationMs)) * 1000,
    elapsedMs,
  };
}

import type { OutMessage, Producer } from "../kafka/transport.ts";

/** Too much is in flight: the caller should answer 503 with Retry-After. */
export class BackpressureError extends Error {
  readonly retriable = true;
  constructor(inFlight: number, max: number) {
    super(`${inFlight} records are waiting for the broker (limit ${max})`);
    this.name = "BackpressureError";
  }
}

interface Pending {
  readonly topic: string;
  readonly message: OutMessage;
  resolve(): void;
  reject(err: unknown): void;
}

export interface BatchingProducerOptions {
  /** How long the first record waits for others before a send. */
  readonly lingerMs?: number;
  /** Most records per send. */
  readonly maxBatch?: number;
  /** Most records queued or being sent; beyond it `produce` throws BackpressureError. */
  readonly maxInFlight?: number;
}

/**
 * Groups records of concurrent requests into one produce request (the
 * idempotent producer allows one request in flight per broker, so batching is
 * what gives throughput). Each `produce` resolves only after the broker
 * acknowledged its records with acks=all; memory is bounded by `maxInFlight`.
 */
export class BatchingProducer {
  readonly #producer: Producer;
  readonly #lingerMs: number;
  readonly #maxBatch: number;
  readonly #maxInFlight: number;
  #queue: Pending[] = [];
  #inFlight = 0;
  #timer: NodeJS.Timeout | undefined;
  #sending: Promise<void> = Promise.resolve();

  constructor(producer: Producer, opts: BatchingProducerOptions = {}) {
    this.#producer = producer;
    this.#lingerMs = opts.lingerMs ?? 2;
    this.#maxBatch = opts.maxBatch ?? 2_000;
    this.#maxInFlight = opts.maxInFlight ?? 20_000;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Queues all records or none (a request is never half-accepted for backpressure). */
  produce(records: readonly { topic: string; message: OutMessage }[]): Promise<void> {
    if (this.#inFlight + records.length > this.#maxInFlight) {
      return Promise.reject(new BackpressureError(this.#inFlight, this.#maxInFlight));
    }
    this.#inFlight += records.length;
    const done = records.map(
      (r) =>
        new Promise<void>((resolve, reject) => {
          this.#queue.push({ topic: r.topic, message: r.message, resolve, reject });
        }),
    );
    if (this.#queue.length >= this.#maxBatch) this.#flushSoon(0);
    else this.#flushSoon(this.#lingerMs);
    return Promise.all(done).then(() => undefined);
  }

  #flushSoon(ms: number): void {
    if (this.#timer !== undefined) {
      if (ms > 0) return;
      clearTimeout(this.#timer);
    }
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#sending = this.#sending.then(() => this.#sendQueued());
    }, ms);
  }

  async #sendQueued(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.#maxBatch);
      const byTopic = new Map<string, OutMessage[]>();
      for (const p of batch) {
        const list = byTopic.get(p.topic) ?? [];
        list.push(p.message);
        byTopic.set(p.topic, list);
      }
      try {
        await this.#producer.send([...byTopic].map(([topic, messages]) => ({ topic, messages })));
        for (const p of batch) p.resolve();
      } catch (err) {
        for (const p of batch) p.reject(err);
      } finally {
        this.#inFlight -= batch.length;
      }
    }
  }

  /** Sends what is queued, then closes the producer. */
  async close(): Promise<void> {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#sending = this.#sending.then(() => this.#sendQueued());
    }
    await this.#sending;
    await this.#producer.close();
  }
}

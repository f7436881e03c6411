import { gzipSync } from "node:zlib";
import type { S3Client } from "@aws-sdk/client-s3";
import type { Logger } from "../../lib/log.ts";
import type { Admin, RecordBatch, TopicPartition, Transport } from "../kafka/transport.ts";
import { tpKey } from "../kafka/transport.ts";
import type { Registry } from "../runtime/metrics.ts";
import { withRetry } from "../runtime/retry.ts";
import { NOTHING_TO_COMMIT, Stream, type Sunk } from "../runtime/stream.ts";
import { type ObjectStore, s3ObjectStore } from "../storage/objects.ts";
import { objectKey, PartitionSegmenter, type Segment } from "./segments.ts";

export interface BronzeArchiverOptions {
  readonly transport: Transport;
  readonly admin: Admin;
  /** Where objects go (a local folder in `gavel dev`). Default: PutObject into `bucket` through `s3`. */
  readonly store?: ObjectStore;
  readonly s3?: S3Client;
  readonly bucket?: string;
  /** Key prefix ending in `/` (`spec.storage.s3.prefix`, default `<pipeline>/`). */
  readonly prefix: string;
  readonly topics: readonly string[];
  readonly groupId: string;
  readonly logger: Logger;
  readonly metrics: Registry;
  /** Most records per object. Default 50,000. */
  readonly maxRecords?: number;
  /** Most bytes (uncompressed) per object. Default 16 MiB. */
  readonly maxBytes?: number;
  /** Oldest an open object may get before it is written. Default 60 s. */
  readonly maxAgeMs?: number;
  /** Bytes buffered across all partitions before the largest open object is written early. Default 128 MiB. */
  readonly maxBufferedBytes?: number;
  readonly now?: () => number;
}

/** Offset metadata written before an upload: the object about to be written ends at `cut`. */
interface CutMeta {
  readonly cut: number;
}

interface PartState {
  readonly seg: PartitionSegmenter;
  /**
   * Complete segments not yet written, oldest first. A failed write keeps its
   * segment here and the next batch or flush tries it again before anything
   * newer: writing out of order would move the committed offset backwards.
   */
  readonly unwritten: Segment[];
  lock: Promise<void>;
}

/**
 * Archives every topic to S3 as gzipped NDJSON, one object per
 * topic-partition offset range within one UTC hour: a sink on the consume
 * loop (runtime/stream.ts) that commits at its own points. Exactly-once
 * keys: before an object is uploaded its cut (last offset) is committed as
 * offset metadata; after the upload the offset moves past it. A crash
 * between the two replays the same cut, so the re-run overwrites the same
 * key with the same records. Records of an object not yet uploaded are in
 * memory only: the consumer moves past them, the committed offset does not.
 */
export class BronzeArchiver extends Stream<RecordBatch> {
  readonly #options: BronzeArchiverOptions;
  /** Open objects and queued segments, by `topic/partition`. */
  readonly #parts = new Map<string, PartState>();
  /** The age flush. */
  #timer?: NodeJS.Timeout;
  /** Bumped by every assignment: writes of an older one are abandoned. */
  #generation = 0;
  readonly #now: () => number;
  readonly #store: ObjectStore;
  readonly #metrics;

  constructor(o: BronzeArchiverOptions) {
    super({
      transport: o.transport,
      processor: "bronze-archiver",
      groupId: o.groupId,
      topics: o.topics,
      consumer: { fromBeginning: true },
      metrics: o.metrics,
      logger: o.logger,
    });
    this.#options = o;
    if (o.store) this.#store = o.store;
    else if (o.s3 && o.bucket) this.#store = s3ObjectStore(o.s3, o.bucket);
    else throw new Error("bronze archiver needs an object store, or an S3 client and a bucket");
    this.#now = o.now ?? Date.now;
    const m = o.metrics;
    this.#metrics = {
      objects: m.counter("bronze_objects_total", "Objects written to S3, by topic."),
      records: m.counter("bronze_records_total", "Records archived (uploaded and committed), by topic."),
      bytes: m.counter("bronze_bytes_total", "Compressed bytes uploaded, by topic."),
      buffered: m.gauge("bronze_buffered_bytes", "Uncompressed bytes waiting in open objects."),
      upload: m.histogram("bronze_upload_seconds", "Time to upload and commit one object."),
    };
  }

  override async start(): Promise<void> {
    await super.start();
    this.#timer = setInterval(
      () => void this.#flushAged(),
      Math.min(5_000, Math.max(200, (this.#options.maxAgeMs ?? 60_000) / 4)),
    );
  }

  protected override async assigned(assigned: readonly TopicPartition[]): Promise<void> {
    // The consumer restarts every partition from its committed offset after a
    // rebalance, so open objects are dropped and re-read (nothing was committed for them).
    this.#generation++;
    for (const st of this.#parts.values()) await st.lock.catch(() => undefined);
    this.#parts.clear();
    const cuts = new Map<string, number>();
    for (const topic of new Set(assigned.map((a) => a.topic))) {
      for (const c of await this.#options.admin.groupOffsets(this.#options.groupId, topic)) {
        const meta = parseCut(c.metadata);
        if (meta) cuts.set(tpKey(topic, c.partition), meta.cut);
      }
    }
    for (const { topic, partition } of assigned) {
      const k = tpKey(topic, partition);
      this.#parts.set(k, {
        seg: new PartitionSegmenter(
          topic,
          partition,
          {
            maxRecords: this.#options.maxRecords ?? 50_000,
            maxBytes: this.#options.maxBytes ?? 16 * 1024 * 1024,
          },
          cuts.get(k),
        ),
        unwritten: [],
        lock: Promise.resolve(),
      });
    }
    this.#updateBuffered();
  }

  #withLock(st: PartState, fn: () => Promise<void>): Promise<void> {
    const run = st.lock.then(fn);
    st.lock = run.catch(() => undefined);
    return run;
  }

  /** The records themselves: the partition's segmenter turns them into lines under its lock. */
  protected transform(batch: RecordBatch): RecordBatch {
    return batch;
  }

  /**
   * Adds the records to the partition's open object and writes every object
   * they complete (each write commits its own offsets). Buffered records are
   * in memory only: the loop moves the position on, the committed offset stays.
   */
  protected async sink(batch: RecordBatch): Promise<Sunk> {
    const st = this.#parts.get(tpKey(batch.topic, batch.partition));
    if (!st) throw new Error(`batch for unassigned partition ${batch.topic}/${batch.partition}`);
    const generation = this.#generation;
    await this.#withLock(st, async () => {
      await this.#drain(st, generation);
      const now = this.#now();
      for (const r of batch.records) {
        const done = st.seg.add(r, now);
        if (done.length === 0) continue;
        st.unwritten.push(...done);
        await this.#drain(st, generation);
      }
    });
    return NOTHING_TO_COMMIT;
  }

  /** Memory is bounded: past the limit the largest open object is written early. */
  protected override async committed(): Promise<void> {
    this.#updateBuffered();
    if (this.#buffered() > (this.#options.maxBufferedBytes ?? 128 * 1024 * 1024)) await this.#flushLargest();
  }

  /** Writes the partition's complete segments in order; a failure leaves the rest for the next try. */
  async #drain(st: PartState, generation: number): Promise<void> {
    for (;;) {
      const s = st.unwritten[0];
      if (!s) return;
      await this.#write(s, generation);
      st.unwritten.shift();
    }
  }

  #buffered(): number {
    let n = 0;
    for (const st of this.#parts.values()) {
      n += st.seg.open?.bytes ?? 0;
      for (const s of st.unwritten) n += s.bytes;
    }
    return n;
  }

  #updateBuffered(): void {
    this.#metrics.buffered.set({}, this.#buffered());
  }

  async #flushLargest(): Promise<void> {
    let best: PartState | undefined;
    for (const st of this.#parts.values())
      if ((st.seg.open?.bytes ?? 0) > (best?.seg.open?.bytes ?? 0)) best = st;
    if (!best) return;
    const st = best;
    const generation = this.#generation;
    await this.#withLock(st, async () => {
      const s = st.seg.takeOpen();
      if (s) st.unwritten.push(s);
      await this.#drain(st, generation);
    });
    this.#updateBuffered();
  }

  async #flushAged(): Promise<void> {
    if (this.stopping) return;
    const now = this.#now();
    const maxAge = this.#options.maxAgeMs ?? 60_000;
    const generation = this.#generation;
    for (const st of this.#parts.values()) {
      // close() while a pass is under way: what is left is written by the next owner.
      if (this.stopping) break;
      const open = st.seg.open;
      if (st.unwritten.length === 0 && (!open || now - open.openedAt < maxAge)) continue;
      await this.#withLock(st, async () => {
        const cur = st.seg.open;
        if (cur && now - cur.openedAt >= maxAge) {
          const s = st.seg.takeOpen();
          if (s) st.unwritten.push(s);
        }
        await this.#drain(st, generation);
      }).catch((err) => {
        const where = { err, topic: st.seg.topic, partition: st.seg.partition };
        // Stopping: the consumer is gone, the objects are the next owner's to write.
        if (this.stopping) this.logger.debug(where, "age flush abandoned: stopping");
        else this.logger.error(where, "age flush failed");
      });
    }
    this.#updateBuffered();
  }

  /** cut metadata -> upload -> offset past the object. Each step is retried; the order is what makes keys stable. */
  async #write(s: Segment, generation: number): Promise<void> {
    if (generation !== this.#generation) throw new Error("partition reassigned; object abandoned");
    const started = this.#now();
    const key = objectKey(this.#options.prefix, s);
    const body = gzipSync(`${s.lines.join("\n")}\n`);
    const retry = {
      logger: this.logger,
      retries: 20,
      maxTimeoutMs: 5_000,
      shouldContinue: () => !this.stopping,
    };
    const cut: CutMeta = { cut: s.last };
    await withRetry(
      () =>
        this.commitOffsets([
          { topic: s.topic, partition: s.partition, offset: s.first, metadata: JSON.stringify(cut) },
        ]),
      { ...retry, what: `recording the cut of ${key}` },
    );
    await withRetry(
      () => this.#store.put(key, body, { contentType: "application/x-ndjson", contentEncoding: "gzip" }),
      { ...retry, what: `uploading ${key}` },
    );
    await withRetry(
      () =>
        this.commitOffsets([{ topic: s.topic, partition: s.partition, offset: s.last + 1, metadata: "" }]),
      { ...retry, what: `committing past ${key}` },
    );
    this.#metrics.objects.inc({ topic: s.topic });
    this.#metrics.records.inc({ topic: s.topic }, s.lines.length);
    this.#metrics.bytes.inc({ topic: s.topic }, body.length);
    this.#metrics.upload.observe({}, (this.#now() - started) / 1000);
    this.logger.debug({ key, records: s.lines.length }, "bronze object written");
  }

  /**
   * Stops consuming. Open (not yet uploaded) objects are dropped: their
   * offsets were never committed, so the next owner re-reads them.
   */
  override async close(): Promise<void> {
    const stopped = super.close();
    if (this.#timer) clearInterval(this.#timer);
    await stopped.catch(() => undefined);
  }
}

function parseCut(s: string | null): CutMeta | undefined {
  if (!s) return undefined;
  try {
    const v = JSON.parse(s) as CutMeta;
    return typeof v.cut === "number" ? v : undefined;
  } catch {
    return undefined;
  }
}

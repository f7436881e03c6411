/**
 * Pure segmenting of one partition's records into bronze objects: an object
 * never spans a UTC hour (of the record timestamps) and is bounded in records
 * and bytes; a cut made before a crash (stored as offset metadata) is
 * reproduced exactly, so a re-run writes the same keys.
 */
import { toIso } from "../../api/events/decode.ts";
import type { KafkaRecord } from "../kafka/transport.ts";

/** One line of a bronze object: the record exactly as consumed. */
export interface BronzeLine {
  topic: string;
  partition: number;
  offset: number;
  timestamp: string;
  key: string | null;
  /** The value as UTF-8 text (JSON records stay readable), null for a tombstone. */
  value: string | null;
  /** Set instead of `value` when the bytes are not valid UTF-8. */
  value_base64?: string;
}

export function toLine(r: KafkaRecord): BronzeLine {
  const line: BronzeLine = {
    topic: r.topic,
    partition: r.partition,
    offset: r.offset,
    timestamp: toIso(r.timestamp),
    key: r.key,
    value: null,
  };
  if (r.value !== null) {
    const s = r.value.toString("utf8");
    if (Buffer.from(s, "utf8").equals(r.value)) line.value = s;
    else line.value_base64 = r.value.toString("base64");
  }
  return line;
}

/** `YYYY-MM-DD/HH` of a record timestamp (UTC). */
export function hourOf(ms: number): string {
  const iso = toIso(ms);
  return `${iso.slice(0, 10)}/${iso.slice(11, 13)}`;
}

export interface Segment {
  readonly topic: string;
  readonly partition: number;
  readonly hour: string;
  readonly first: number;
  last: number;
  readonly lines: string[];
  bytes: number;
  /** Wall-clock time the segment was opened (for the maximum object age). */
  readonly openedAt: number;
}

/** Object key: `<prefix>bronze/topic=<t>/date=<d>/hour=<h>/<partition>-<first>-<last>.ndjson.gz`. */
export function objectKey(
  prefix: string,
  s: Pick<Segment, "topic" | "partition" | "hour" | "first" | "last">,
): string {
  const [date, hour] = s.hour.split("/");
  return `${prefix}bronze/topic=${s.topic}/date=${date}/hour=${hour}/${s.partition}-${s.first}-${s.last}.ndjson.gz`;
}

export interface SegmenterLimits {
  readonly maxRecords: number;
  readonly maxBytes: number;
}

/**
 * Segments one topic-partition. `add` returns the segments that became
 * complete; `takeOpen` hands over the open one (age or memory flush).
 */
export class PartitionSegmenter {
  readonly topic: string;
  readonly partition: number;
  readonly #limits: SegmenterLimits;
  /** Last offset of a cut decided before a restart: the open segment must end exactly there. */
  #pendingCut: number | undefined;
  #open: Segment | undefined;
  /** Offset after the last record added: records below it (a redelivered batch) are already in. */
  #next: number | undefined;

  constructor(topic: string, partition: number, limits: SegmenterLimits, pendingCut?: number) {
    this.topic = topic;
    this.partition = partition;
    this.#limits = limits;
    this.#pendingCut = pendingCut;
  }

  get open(): Segment | undefined {
    return this.#open;
  }

  get pendingCut(): number | undefined {
    return this.#pendingCut;
  }

  /**
   * Adds a record; returns the segments it completed. A record at or below
   * one already added is ignored: a batch that failed halfway is delivered
   * again from its first record, and those records are already in a segment.
   */
  add(r: KafkaRecord, now: number): Segment[] {
    if (this.#next !== undefined && r.offset < this.#next) return [];
    this.#next = r.offset + 1;
    const done: Segment[] = [];
    const line = JSON.stringify(toLine(r));
    const hour = hourOf(r.timestamp);
    const cur = this.#open;
    if (cur) {
      const pending = this.#pendingCut;
      // A replayed cut wins over every other rule (it was made with these same records).
      const mustCut =
        pending !== undefined
          ? r.offset > pending
          : cur.hour !== hour ||
            cur.lines.length >= this.#limits.maxRecords ||
            cur.bytes + line.length > this.#limits.maxBytes;
      if (mustCut) {
        done.push(cur);
        this.#open = undefined;
        this.#pendingCut = undefined;
      }
    } else if (this.#pendingCut !== undefined && r.offset > this.#pendingCut) {
      this.#pendingCut = undefined; // the cut's records are gone (compaction): nothing to replay
    }
    if (!this.#open) {
      this.#open = {
        topic: this.topic,
        partition: this.partition,
        hour,
        first: r.offset,
        last: r.offset,
        lines: [],
        bytes: 0,
        openedAt: now,
      };
    }
    const seg = this.#open;
    seg.lines.push(line);
    seg.bytes += line.length + 1;
    seg.last = r.offset;
    if (this.#pendingCut !== undefined && r.offset === this.#pendingCut) {
      done.push(seg);
      this.#open = undefined;
      this.#pendingCut = undefined;
    }
    return done;
  }

  /** Removes and returns the open segment (unless it must still reach a replayed cut). */
  takeOpen(): Segment | undefined {
    if (this.#pendingCut !== undefined) return undefined;
    const s = this.#open;
    this.#open = undefined;
    return s;
  }
}

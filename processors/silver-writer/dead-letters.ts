/**
 * silver.dead_letters: where the silver-writer puts every record it cannot
 * turn into a row (migration 0003). Pure helpers: the rows, the parameterised
 * insert, and which PostgreSQL errors are the data's fault (and so isolate
 * one record instead of failing its batch).
 */
import type { KafkaRecord } from "../kafka/transport.ts";
import type { Statement, Unusable, UnusableReason } from "./rows.ts";

export const DEAD_LETTER_TABLE = "silver.dead_letters";

/** Every reason code (the `reason` label of gavel_silver_writer_unusable_records_total). */
export const UNUSABLE_REASONS: readonly UnusableReason[] = [
  "not_json",
  "not_object",
  "invalid_field",
  "db_rejected",
];

export interface DeadLetter {
  readonly record: KafkaRecord;
  /** The silver table the record was meant for. */
  readonly table: string;
  readonly reason: UnusableReason;
  readonly detail: string;
  readonly sqlstate?: string;
}

export function fromUnusable(table: string, u: Unusable): DeadLetter {
  return { record: u.record, table, reason: u.code, detail: u.reason };
}

/**
 * SQLSTATE classes 22 (data exception: out of range, invalid text, bad
 * Unicode escape ...) and 23 (integrity constraint violation): the row is at
 * fault and retrying cannot help. Connection, resource, serialisation and
 * every other error are the batch's problem (retried whole).
 */
export function dataErrorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^2[23][0-9A-Z]{3}$/.test(code) ? code : undefined;
}

const clean = (s: string, max: number) => s.replaceAll("\u0000", "").slice(0, max);

const COLUMNS = [
  "source_topic",
  "source_partition",
  "source_offset",
  "target_table",
  "reason",
  "detail",
  "sqlstate",
  "key",
  "value",
  "record_timestamp",
] as const;

const MAX_ROWS = Math.floor(60_000 / COLUMNS.length);

function row(d: DeadLetter): unknown[] {
  const r = d.record;
  const ts = Number.isFinite(r.timestamp) ? new Date(r.timestamp) : null;
  return [
    r.topic,
    r.partition,
    r.offset,
    d.table,
    d.reason,
    clean(d.detail, 2_000),
    d.sqlstate ?? null,
    r.key === null ? null : clean(r.key, 10_000),
    r.value,
    ts && !Number.isNaN(ts.getTime()) ? ts.toISOString() : null,
  ];
}

/**
 * Inserts of the dead letters, chunked under the parameter limit. A record
 * already there (a re-delivered batch) is left as it is.
 */
export function deadLetterStatements(letters: readonly DeadLetter[]): Statement[] {
  const out: Statement[] = [];
  for (let i = 0; i < letters.length; i += MAX_ROWS) {
    const values: unknown[] = [];
    const tuples = letters.slice(i, i + MAX_ROWS).map((d) => {
      const ph = row(d).map((x) => {
        values.push(x);
        return `$${values.length}`;
      });
      return `(${ph.join(", ")})`;
    });
    out.push({
      text: `INSERT INTO ${DEAD_LETTER_TABLE} (${COLUMNS.join(", ")}) VALUES ${tuples.join(", ")} ON CONFLICT (source_topic, source_partition, source_offset) DO NOTHING`,
      values,
    });
  }
  return out;
}

/**
 * Embedded PostgreSQL (PGlite: PostgreSQL compiled to WebAssembly, in this
 * process) behind the subset of the `pg.Pool` API the processors use:
 * `query(text, values)`, `connect()` -> client with `query` and `release`,
 * `end()`, `on("error")`. The silver writer, the migrations and the gold
 * rollup run on it unchanged.
 *
 * PGlite is ONE connection. Clients share it, so a transaction must not see
 * another client's statements: the first `BEGIN` makes its client the owner of
 * the connection, and statements of every other client (and of the pool) wait
 * until that transaction ends (COMMIT/ROLLBACK, or `release()`, which rolls an
 * open transaction back). Outside transactions statements interleave freely,
 * each in its own implicit transaction, as on a real pool. Session advisory
 * locks are therefore shared by all clients (one session): the rollup's
 * per-day lock and the migrations' lock cannot conflict with themselves here,
 * which is what a single process needs.
 *
 * Values come back as node-postgres returns them: int8 and numeric as
 * strings, timestamptz as Date, json/jsonb parsed.
 *
 * COPY: node-postgres streams COPY through pg-copy-streams, which PGlite has
 * no wire for; clients here implement `copyOutCsv` / `copyInCsv`
 * (processors/rollup/extract.ts uses them when present) with PGlite's
 * `/dev/blob` COPY device.
 */
import { readFile, writeFile } from "node:fs/promises";
import { PGlite } from "@electric-sql/pglite";
import type pg from "pg";

/** int8 and numeric as text, as node-postgres returns them (amounts are exact). */
const PARSERS = { 20: (x: string) => x, 1700: (x: string) => x } as const;

export interface QueryResultLike<R> {
  rows: R[];
  rowCount: number;
  fields: { name: string }[];
  command: string;
}

const BEGIN_RE = /^\s*(BEGIN|START\s+TRANSACTION)\b/i;
const END_RE = /^\s*(COMMIT|ROLLBACK|END|ABORT)\s*(;\s*)?$/i;

/** node-postgres' `query({ name, text, values })` form (the name, a prepared statement's, is not needed here). */
export interface QueryConfigLike {
  readonly name?: string;
  readonly text: string;
  readonly values?: readonly unknown[];
}

function queryOf(
  text: string | QueryConfigLike,
  values?: readonly unknown[],
): { text: string; values?: readonly unknown[] } {
  return typeof text === "string" ? { text, values } : { text: text.text, values: text.values ?? values };
}

/** Values as node-postgres would send them (undefined is NULL). */
function prepare(values: readonly unknown[]): unknown[] {
  return values.map((v) => (v === undefined ? null : typeof v === "bigint" ? v.toString() : v));
}

export class PglitePool {
  readonly db: PGlite;
  #owner: object | undefined;
  #waiters: (() => void)[] = [];
  #closed = false;

  constructor(db: PGlite) {
    this.db = db;
  }

  /** Opens PGlite: in memory, or persisted in `dataDir`. */
  static async open(dataDir?: string): Promise<PglitePool> {
    const db = await PGlite.create(dataDir, { parsers: PARSERS });
    return new PglitePool(db);
  }

  /** This adapter as the `pg.Pool` type the processors take (only the subset above is implemented). */
  asPgPool(): pg.Pool {
    return this as unknown as pg.Pool;
  }

  async #gate(owner: object): Promise<void> {
    while (this.#owner !== undefined && this.#owner !== owner) {
      await new Promise<void>((r) => this.#waiters.push(r));
    }
  }

  #releaseOwner(owner: object): void {
    if (this.#owner !== owner) return;
    this.#owner = undefined;
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  /** Runs `fn` on the connection once no other client's transaction holds it. */
  async direct<T>(owner: object, fn: (db: PGlite) => Promise<T>): Promise<T> {
    if (this.#closed) throw new Error("the embedded database is closed");
    await this.#gate(owner);
    return fn(this.db);
  }

  inTransaction(owner: object): boolean {
    return this.#owner === owner;
  }

  async run<R>(owner: object, text: string, values?: readonly unknown[]): Promise<QueryResultLike<R>> {
    if (this.#closed) throw new Error("the embedded database is closed");
    await this.#gate(owner);
    if (BEGIN_RE.test(text)) this.#owner = owner;
    try {
      if (values && values.length > 0) {
        const r = await this.db.query<R>(text, prepare(values));
        return {
          rows: r.rows,
          rowCount:
            r.fields.length > 0 ? Math.max(r.rows.length, r.affectedRows ?? 0) : (r.affectedRows ?? 0),
          fields: r.fields,
          command: text.trim().split(/\s+/)[0]!.toUpperCase(),
        };
      }
      // Without parameters: the simple protocol (several statements allowed, as in node-postgres).
      const results = await this.db.exec(text);
      const last = results.at(-1);
      const rows = (last?.rows ?? []) as R[];
      return {
        rows,
        rowCount: last && last.fields.length > 0 ? rows.length : (last?.affectedRows ?? 0),
        fields: last?.fields ?? [],
        command: text.trim().split(/\s+/)[0]!.toUpperCase(),
      };
    } finally {
      if (END_RE.test(text)) this.#releaseOwner(owner);
    }
  }

  /** `pool.query`: one statement outside any client's transaction. */
  query<R = Record<string, unknown>>(
    text: string | QueryConfigLike,
    values?: readonly unknown[],
  ): Promise<QueryResultLike<R>> {
    const q = queryOf(text, values);
    return this.run<R>({}, q.text, q.values);
  }

  async connect(): Promise<PgliteClient> {
    return new PgliteClient(this);
  }

  /** node-postgres pools emit "error" for idle clients; one in-process connection has none to lose. */
  on(_event: string, _listener: (...args: unknown[]) => void): this {
    return this;
  }

  off(_event: string, _listener: (...args: unknown[]) => void): this {
    return this;
  }

  async end(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.db.close();
  }
}

/** A checked-out "client": an identity for transaction ownership on the one connection. */
export class PgliteClient {
  readonly #pool: PglitePool;
  #released = false;

  constructor(pool: PglitePool) {
    this.#pool = pool;
  }

  query<R = Record<string, unknown>>(
    text: string | QueryConfigLike,
    values?: readonly unknown[],
  ): Promise<QueryResultLike<R>> {
    if (this.#released) return Promise.reject(new Error("client was released"));
    const q = queryOf(text, values);
    return this.#pool.run<R>(this, q.text, q.values);
  }

  /** node-postgres clients emit "error" when their connection dies; the in-process one cannot. */
  on(_event: string, _listener: (...args: unknown[]) => void): this {
    return this;
  }

  off(_event: string, _listener: (...args: unknown[]) => void): this {
    return this;
  }

  /** Returns the client; an open transaction is rolled back (a real pool would destroy or reset the connection). */
  release(_err?: Error | boolean): void {
    if (this.#released) return;
    this.#released = true;
    if (this.#pool.inTransaction(this)) void this.#pool.run(this, "ROLLBACK").catch(() => undefined);
  }

  /** `COPY (sql) TO STDOUT (FORMAT csv)` into `file` (processors/rollup/extract.ts `copyOut`). */
  async copyOutCsv(sql: string, file: string): Promise<void> {
    const r = await this.#copy(`COPY (${sql}) TO '/dev/blob' WITH (FORMAT csv)`);
    await writeFile(file, r.blob ? Buffer.from(await r.blob.arrayBuffer()) : Buffer.alloc(0));
  }

  /** A CSV file with a header into `COPY table (columns) FROM STDIN`; returns the row count. */
  async copyInCsv(table: string, columns: readonly string[], file: string): Promise<number> {
    const data = await readFile(file);
    const r = await this.#copy(
      `COPY ${table} (${columns.map((c) => `"${c}"`).join(", ")}) FROM '/dev/blob' WITH (FORMAT csv, HEADER true)`,
      new Blob([data]),
    );
    return r.affectedRows ?? 0;
  }

  async #copy(sql: string, blob?: Blob): Promise<{ blob?: Blob; affectedRows?: number }> {
    if (this.#released) throw new Error("client was released");
    // COPY goes straight to PGlite (the blob option), under this client's transaction ownership.
    return this.#pool.direct(this, (db) => db.query(sql, [], blob ? { blob } : {}));
  }
}

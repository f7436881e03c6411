import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import type pg from "pg";
import { GavelError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/log.ts";

/**
 * Versioned SQL migrations for the `silver` and `gold` schemas.
 *
 * Files are `processors/db/migrations/NNNN_name.sql`, applied in version order,
 * each at most once. Applied versions and the SHA-256 of their text are kept
 * in `public.gavel_migrations`; editing an applied file is refused (write a
 * new migration instead). Every processor may call `migrate()` at start: the
 * whole run holds a transaction-scoped advisory lock, so concurrent starts
 * serialise and the later ones find nothing to do.
 */

/** Default location of the migration files, next to this module. */
export const MIGRATIONS_DIR = fileURLToPath(new URL("./migrations/", import.meta.url));

/** Advisory lock key shared by every `migrate()` caller ("gavelmig" in ASCII). */
export const MIGRATION_LOCK_KEY = 0x676176656c6d6967n;

export interface Migration {
  /** Integer prefix of the file name; the order of application. */
  readonly version: number;
  /** File name without the version prefix and `.sql`. */
  readonly name: string;
  readonly file: string;
  readonly sql: string;
  /** Hex SHA-256 of the file text. */
  readonly checksum: string;
}

export interface MigrateOptions {
  /** Directory of `NNNN_name.sql` files. Default: {@link MIGRATIONS_DIR}. */
  readonly dir?: string;
  readonly logger?: Logger;
}

export interface MigrationStatusRow {
  readonly version: number;
  readonly name: string;
  /** applied: in the database with the same checksum; pending: not yet applied;
   * modified: applied, but the file changed since; unknown: applied, no file here. */
  readonly state: "applied" | "pending" | "modified" | "unknown";
  readonly appliedAt?: Date;
}

export interface MigrateResult {
  readonly applied: readonly Migration[];
  /** Highest version in the database after the run. */
  readonly current: number;
}

/** A migration problem that retrying cannot fix (edited file, bad name). */
export class MigrationError extends GavelError {
  readonly retriable = false;
}

const FILE_RE = /^(\d+)_([A-Za-z0-9_.-]+)\.sql$/;

export function checksum(sql: string): string {
  return createHash("sha256").update(sql).digest("hex");
}

/** Parses a migration file name; undefined when the name is not a migration. */
export function parseMigrationFileName(file: string): { version: number; name: string } | undefined {
  const m = FILE_RE.exec(file);
  if (!m) return undefined;
  return { version: Number.parseInt(m[1]!, 10), name: m[2]! };
}

export async function loadMigrations(dir: string = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith(".sql")).sort();
  const out: Migration[] = [];
  const seen = new Map<number, string>();
  for (const file of files) {
    const parsed = parseMigrationFileName(file);
    if (!parsed) throw new MigrationError(`migration file name ${file} does not match NNNN_name.sql`);
    const prev = seen.get(parsed.version);
    if (prev)
      throw new MigrationError(`migrations ${prev} and ${file} have the same version ${parsed.version}`);
    seen.set(parsed.version, file);
    const sql = await readFile(`${dir.replace(/\/$/, "")}/${file}`, "utf8");
    out.push({ ...parsed, file, sql, checksum: checksum(sql) });
  }
  return out.sort((a, b) => a.version - b.version);
}

interface AppliedRow {
  version: number;
  name: string;
  checksum: string;
  applied_at: Date;
}

/**
 * Pure comparison of files against applied rows. Throws on an edited applied
 * file; returns the pending migrations in order.
 */
export function planMigrations(
  files: readonly Migration[],
  applied: readonly Pick<AppliedRow, "version" | "name" | "checksum">[],
): Migration[] {
  const byVersion = new Map(applied.map((a) => [a.version, a]));
  for (const f of files) {
    const a = byVersion.get(f.version);
    if (a && a.checksum !== f.checksum) {
      throw new MigrationError(
        `migration ${f.file} was edited after it was applied (checksum ${a.checksum.slice(0, 12)} in the database, ${f.checksum.slice(0, 12)} on disk); restore it and add a new migration instead`,
      );
    }
  }
  return files.filter((f) => !byVersion.has(f.version));
}

const CREATE_TABLE = `CREATE TABLE IF NOT EXISTS public.gavel_migrations (
  version    integer     PRIMARY KEY,
  name       text        NOT NULL,
  checksum   text        NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
)`;

/**
 * Applies every pending migration in one transaction under an advisory lock.
 * Either all pending migrations are applied or none.
 */
export async function migrate(pool: pg.Pool, opts: MigrateOptions = {}): Promise<MigrateResult> {
  const files = await loadMigrations(opts.dir);
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    try {
      await client.query("SELECT pg_advisory_xact_lock($1::bigint)", [MIGRATION_LOCK_KEY.toString()]);
      await client.query(CREATE_TABLE);
      const { rows } = await client.query<AppliedRow>(
        "SELECT version, name, checksum, applied_at FROM public.gavel_migrations ORDER BY version",
      );
      const pending = planMigrations(files, rows);
      const known = new Set(files.map((f) => f.version));
      for (const r of rows) {
        if (!known.has(r.version)) {
          // A newer release applied it (e.g. during a rollback); not an error.
          opts.logger?.warn(
            { version: r.version, migration: r.name },
            "database has a migration this release does not know",
          );
        }
      }
      for (const m of pending) {
        opts.logger?.info({ version: m.version, migration: m.name }, "applying migration");
        try {
          await client.query(m.sql);
        } catch (err) {
          const msg = err instanceof Error ? err.message : String(err);
          throw new MigrationError(`migration ${m.file} failed: ${msg}`);
        }
        await client.query(
          "INSERT INTO public.gavel_migrations (version, name, checksum) VALUES ($1, $2, $3)",
          [m.version, m.name, m.checksum],
        );
      }
      await client.query("COMMIT");
      const current = Math.max(0, ...rows.map((r) => r.version), ...pending.map((p) => p.version));
      if (pending.length > 0) opts.logger?.info({ applied: pending.length, current }, "migrations applied");
      return { applied: pending, current };
    } catch (err) {
      await client.query("ROLLBACK").catch(() => {});
      throw err;
    }
  } finally {
    client.release();
  }
}

/** Which migrations are applied, pending, modified or unknown; read-only. */
export async function migrationStatus(
  pool: pg.Pool,
  opts: MigrateOptions = {},
): Promise<MigrationStatusRow[]> {
  const files = await loadMigrations(opts.dir);
  const exists = await pool.query<{ t: string | null }>(
    "SELECT to_regclass('public.gavel_migrations')::text AS t",
  );
  const applied: AppliedRow[] =
    exists.rows[0]?.t == null
      ? []
      : (
          await pool.query<AppliedRow>(
            "SELECT version, name, checksum, applied_at FROM public.gavel_migrations ORDER BY version",
          )
        ).rows;
  const byVersion = new Map(applied.map((a) => [a.version, a]));
  const out: MigrationStatusRow[] = files.map((f) => {
    const a = byVersion.get(f.version);
    if (!a) return { version: f.version, name: f.name, state: "pending" };
    return {
      version: f.version,
      name: f.name,
      state: a.checksum === f.checksum ? "applied" : "modified",
      appliedAt: a.applied_at,
    };
  });
  const known = new Set(files.map((f) => f.version));
  for (const a of applied) {
    if (!known.has(a.version))
      out.push({ version: a.version, name: a.name, state: "unknown", appliedAt: a.applied_at });
  }
  return out.sort((a, b) => a.version - b.version);
}

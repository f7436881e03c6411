import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate, migrationStatus } from "../../processors/db/migrate.ts";
import { openPool } from "../../processors/db/pool.ts";
import { ensureCa } from "../env/pki.ts";
import { createTestDatabase } from "./rollup-helpers.ts";

/**
 * DATABASE_URL with `sslmode=verify-full&sslrootcert=FILE` against the test
 * environment's PostgreSQL, which serves TLS with a certificate for
 * 127.0.0.1 and localhost signed by PG_TLS_CA (test/env/services.ts). Every
 * product path opens its pool with `openPool`; `gavel migrate` is run as a
 * command too. The gold rollup's DuckDB never connects to PostgreSQL (rows
 * move through COPY on the same kind of pool), so there is no second client
 * to prove.
 */

const REPO = join(import.meta.dirname, "../..");

function withDatabase(url: string, db: string, params: Record<string, string> = {}): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  return u.toString();
}

async function sslOf(pool: pg.Pool): Promise<boolean> {
  const r = await pool.query<{ ssl: boolean }>("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
  return r.rows[0]!.ssl;
}

async function failureOf(url: string): Promise<Error> {
  const pool = openPool(url, { max: 1, connectionTimeoutMillis: 5_000 });
  try {
    await pool.query("SELECT 1");
  } catch (err) {
    return err as Error;
  } finally {
    await pool.end();
  }
  throw new Error(`connecting to ${url} succeeded`);
}

function gavelMigrate(databaseUrl: string): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [join(REPO, "bin/gavel"), "migrate"], {
    env: { ...process.env, DATABASE_URL: databaseUrl, LOG_LEVEL: "warn" },
    encoding: "utf8",
    timeout: 60_000,
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe("PostgreSQL over TLS (sslmode=verify-full)", () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let dbName: string;
  let tlsUrl: string;
  let otherCaDir: string;
  let otherCa: string;

  beforeAll(async () => {
    const base = process.env.DATABASE_TLS_URL;
    if (!base || !process.env.PG_TLS_CA) {
      throw new Error(
        "DATABASE_TLS_URL/PG_TLS_CA missing from .testenv/env: the PostgreSQL of the test environment predates TLS; restart it ('gavel testenv down', then 'up')",
      );
    }
    db = await createTestDatabase();
    dbName = new URL(db.url).pathname.slice(1);
    tlsUrl = withDatabase(base, dbName);
    otherCaDir = mkdtempSync(join(tmpdir(), "gavel-other-ca-"));
    otherCa = ensureCa(otherCaDir, "other", "Not the PostgreSQL CA").crt;
  });
  afterAll(async () => {
    await db?.drop();
    if (otherCaDir) rmSync(otherCaDir, { recursive: true, force: true });
  });

  it("migrates and queries over an encrypted, verified connection; plaintext still works", async () => {
    expect(new URL(tlsUrl).searchParams.get("sslmode")).toBe("verify-full");
    const pool = openPool(tlsUrl, { max: 2 });
    try {
      const res = await migrate(pool);
      expect(res.applied.length).toBeGreaterThan(0);
      expect((await migrationStatus(pool)).every((r) => r.state === "applied")).toBe(true);
      expect(await sslOf(pool)).toBe(true);
    } finally {
      await pool.end();
    }
    // The certificate names localhost too.
    const byName = openPool(tlsUrl.replace("127.0.0.1", "localhost"), { max: 1 });
    try {
      expect(await sslOf(byName)).toBe(true);
    } finally {
      await byName.end();
    }
    // The existing DATABASE_URL is unchanged: plaintext.
    expect(await sslOf(db.pool)).toBe(false);
  });

  it("'gavel migrate' connects with the URL's TLS settings", () => {
    const ok = gavelMigrate(tlsUrl);
    expect(ok.out).toContain("database is up to date");
    expect(ok.status).toBe(0);
    const bad = gavelMigrate(withDatabase(tlsUrl, dbName, { sslrootcert: otherCa }));
    expect(bad.status).toBe(1);
    expect(bad.out).toMatch(/PostgreSQL at 127\.0\.0\.1:\d+: TLS certificate rejected: unable to verify/);
  });

  it("refuses a server certificate another CA signed", async () => {
    const err = await failureOf(withDatabase(tlsUrl, dbName, { sslrootcert: otherCa }));
    expect(err.message).toMatch(
      /^PostgreSQL at 127\.0\.0\.1:\d+: TLS certificate rejected: unable to verify the first certificate \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)/,
    );
    expect(err.message).not.toContain("--use-system-ca");
    // node-postgres 8 treats sslmode=require as verify-full (libpq would not verify).
    const req = await failureOf(withDatabase(tlsUrl, dbName, { sslmode: "require", sslrootcert: otherCa }));
    expect(req.message).toContain("TLS certificate rejected");
    // No sslrootcert: Node's public CAs, which did not sign the test CA.
    const u = new URL(tlsUrl);
    u.searchParams.delete("sslrootcert");
    expect((await failureOf(u.toString())).message).toContain("TLS certificate rejected");
  });

  it("refuses an unreadable sslrootcert before connecting", async () => {
    const missing = join(otherCaDir, "missing.crt");
    expect(() => openPool(withDatabase(tlsUrl, dbName, { sslrootcert: missing }))).toThrow(
      `PostgreSQL URL: sslrootcert '${missing}' cannot be read (ENOENT)`,
    );
  });

  describe("a host name the certificate does not hold", () => {
    // 127.0.0.2 reaches the server through a forwarder; the certificate holds 127.0.0.1 and localhost only.
    let forwarder: Server;
    let port: number;
    const sockets = new Set<Socket>();
    beforeAll(async () => {
      const target = Number(new URL(tlsUrl).port);
      forwarder = createServer((client) => {
        const upstream = createConnection({ host: "127.0.0.1", port: target });
        for (const s of [client, upstream]) {
          sockets.add(s);
          s.on("error", () => undefined);
          s.on("close", () => sockets.delete(s));
        }
        client.pipe(upstream).pipe(client);
      });
      await new Promise<void>((resolve) => forwarder.listen(0, "127.0.0.2", resolve));
      port = (forwarder.address() as { port: number }).port;
    });
    afterAll(async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => forwarder?.close(resolve));
    });

    it("fails with verify-full, and connects with the right name through the same path", async () => {
      const u = new URL(tlsUrl);
      u.hostname = "127.0.0.2";
      u.port = String(port);
      const err = await failureOf(u.toString());
      expect(err.message).toMatch(
        /^PostgreSQL at 127\.0\.0\.2:\d+: TLS certificate rejected: Hostname\/IP does not match certificate's altnames: IP: 127\.0\.0\.2 is not in the cert's list: 127\.0\.0\.1.*\(ERR_TLS_CERT_ALTNAME_INVALID\)/,
      );
      // The forwarder itself is sound: plaintext through it works.
      u.search = "";
      const plain = openPool(u.toString(), { max: 1 });
      try {
        expect(await sslOf(plain)).toBe(false);
      } finally {
        await plain.end();
      }
    });
  });
});

/**
 * What `gavel dev` runs on: each of the log, the database and the object
 * store is the real service when its environment variables are set (the
 * names of lib/config.ts, e.g. from `source .testenv/env`) and an embedded
 * stand-in otherwise. The processors get the same interfaces either way.
 */
import { rm } from "node:fs/promises";
import { join } from "node:path";
import type pg from "pg";
import type { ConnectionConfig } from "../../lib/config.ts";
import type { Logger } from "../../lib/log.ts";
import { openPool } from "../../processors/db/pool.ts";
import { createTransport } from "../../processors/kafka/client.ts";
import { MemoryBroker, MemoryTransport } from "../../processors/kafka/memory.ts";
import type { Transport } from "../../processors/kafka/transport.ts";
import { s3ClientFromConfig } from "../../processors/rollup/lake.ts";
import { folderObjectStore, type ObjectStore, s3ObjectStore } from "../../processors/storage/objects.ts";
import { PglitePool } from "./pglite.ts";

export interface Backends {
  /** The connection settings the backends were chosen from. */
  readonly conn: ConnectionConfig;
  readonly transport: Transport;
  /** Set when the log is embedded (for compaction and tests). */
  readonly broker?: MemoryBroker;
  readonly pool: pg.Pool;
  readonly store: ObjectStore;
  /** One line per backend for the banner: `log: embedded (in memory)`. */
  readonly describe: readonly string[];
  readonly embedded: { readonly log: boolean; readonly db: boolean; readonly store: boolean };
  close(): Promise<void>;
}

export async function openBackends(opts: {
  conn: ConnectionConfig;
  dataDir: string;
  /** Bucket of the pipeline spec, used when S3_BUCKET is not set. */
  bucket: string;
  logger: Logger;
}): Promise<Backends> {
  const { conn, logger } = opts;
  const describe: string[] = [];
  let transport: Transport;
  let broker: MemoryBroker | undefined;
  if (conn.kafkaBootstrapServers) {
    transport = await createTransport({ brokers: conn.kafkaBootstrapServers, clientId: "gavel-dev", logger });
    describe.push(`log:      Kafka at ${conn.kafkaBootstrapServers} (KAFKA_BOOTSTRAP_SERVERS)`);
  } else {
    broker = new MemoryBroker({ logger });
    transport = new MemoryTransport(broker);
    describe.push("log:      embedded (in memory; KAFKA_BOOTSTRAP_SERVERS not set)");
  }

  let pool: pg.Pool;
  let pglite: PglitePool | undefined;
  if (conn.databaseUrl) {
    const real = openPool(conn.databaseUrl, { max: 6, connectionTimeoutMillis: 5_000 });
    real.on("error", (err) => logger.warn({ err }, "idle database connection lost"));
    pool = real;
    describe.push(`database: PostgreSQL at ${redactUrl(conn.databaseUrl)} (DATABASE_URL)`);
  } else {
    // A fresh embedded database per run (its data lives as long as the process), so counts are this run's.
    const dir = join(opts.dataDir, "postgres");
    await rm(dir, { recursive: true, force: true });
    pglite = await PglitePool.open(dir);
    pool = pglite.asPgPool();
    describe.push(`database: embedded PostgreSQL (PGlite) in ${dir} (DATABASE_URL not set)`);
  }

  let store: ObjectStore;
  const bucket = conn.s3Bucket ?? opts.bucket;
  if (conn.s3Endpoint || conn.s3Bucket) {
    store = s3ObjectStore(s3ClientFromConfig(conn), bucket);
    describe.push(`objects:  S3 ${store.location}${conn.s3Endpoint ? ` at ${conn.s3Endpoint}` : ""} (S3_*)`);
  } else {
    store = folderObjectStore(join(opts.dataDir, "lake"));
    describe.push(`objects:  folder ${store.location} (S3_ENDPOINT/S3_BUCKET not set)`);
  }

  return {
    conn,
    transport,
    ...(broker ? { broker } : {}),
    pool,
    store,
    describe,
    embedded: {
      log: broker !== undefined,
      db: pglite !== undefined,
      store: !(conn.s3Endpoint || conn.s3Bucket),
    },
    async close() {
      await pool.end();
    },
  };
}

function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(unparseable URL)";
  }
}

import { readConnectionConfig, requireEnv } from "../../lib/config.ts";
import { createLogger } from "../../lib/log.ts";
import { migrate, migrationStatus } from "./migrate.ts";
import { openPool } from "./pool.ts";

export async function runMigrateCommand(opts: { status?: boolean }): Promise<void> {
  const cfg = readConnectionConfig();
  const pool = openPool(requireEnv(cfg, "databaseUrl"), { max: 2 });
  const logger = createLogger("migrate");
  pool.on("error", (err) => logger.warn({ err }, "idle PostgreSQL connection lost"));
  try {
    if (opts.status) {
      const rows = await migrationStatus(pool);
      for (const r of rows) {
        const at = r.appliedAt ? r.appliedAt.toISOString() : "";
        process.stdout.write(
          `${String(r.version).padStart(4, "0")}  ${r.name.padEnd(24)} ${r.state.padEnd(9)} ${at}\n`,
        );
      }
      if (rows.some((r) => r.state === "modified")) process.exitCode = 1;
      return;
    }
    const res = await migrate(pool, { logger });
    process.stdout.write(
      res.applied.length === 0
        ? `database is up to date (version ${res.current})\n`
        : `applied ${res.applied.map((m) => m.file).join(", ")}; now at version ${res.current}\n`,
    );
  } finally {
    await pool.end();
  }
}

import type { Command } from "commander";
import { ENV } from "../../api/env.ts";

/** `gavel migrate [--status]`: applies (or lists) the silver/gold schema migrations. */
export function registerMigrate(program: Command): void {
  program
    .command("migrate")
    .description(
      `apply pending silver/gold schema migrations to ${ENV.databaseUrl.name} (safe to run concurrently)`,
    )
    .option("--status", "list applied and pending migrations instead of applying them")
    .action(async (opts: { status?: boolean }) => {
      const { runMigrateCommand } = await import("./command.ts");
      await runMigrateCommand(opts);
    });
}

import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";

const SHELL = new URL("./shell.ts", import.meta.url).pathname;
const LOG = new URL("../../lib/log.ts", import.meta.url).pathname;

describe("exitOnFailure", () => {
  it("closes the processor and exits 1 once a consumer reports that it stopped for good", () => {
    const script = `
      import { exitOnFailure } from ${JSON.stringify(SHELL)};
      import { createLogger } from ${JSON.stringify(LOG)};
      let failed;
      setTimeout(() => { failed = new Error("The metadata field of the offset request was too large"); }, 100);
      const keepAlive = setInterval(() => {}, 1000);
      exitOnFailure({
        logger: createLogger("shell-test", "info"),
        processor: { close: async () => { clearInterval(keepAlive); process.stdout.write("closed\\n"); } },
        failure: () => failed,
        intervalMs: 20,
      });
    `;
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
      encoding: "utf8",
      timeout: 20_000,
    });
    expect(r.status).toBe(1);
    expect(r.stdout).toContain("closed");
    const fatal = r.stderr
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as { level: number; msg: string; err?: { message: string } })
      .find((l) => l.level === 60);
    expect(fatal?.msg).toMatch(/stopped for good/);
    expect(fatal?.err?.message).toMatch(/metadata field/);
  });

  it("does nothing while no failure is reported", () => {
    const script = `
      import { exitOnFailure } from ${JSON.stringify(SHELL)};
      import { createLogger } from ${JSON.stringify(LOG)};
      const t = exitOnFailure({
        logger: createLogger("shell-test", "info"),
        processor: { close: async () => {} },
        failure: () => undefined,
        intervalMs: 10,
      });
      setTimeout(() => { clearInterval(t); process.stdout.write("still running\\n"); }, 200);
    `;
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("still running");
  });
});

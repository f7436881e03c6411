import type { TestProject } from "vitest/node";
import type { ServiceName } from "../env/services.ts";
import { envFile, paths, readEnvFile, removeExternalData, statuses, stop, up } from "../env/testenv.ts";

declare module "vitest" {
  export interface ProvidedContext {
    testenv: Record<string, string>;
  }
}

/**
 * Starts the test environment when it is not already up, hands its
 * variables to the test workers, and stops afterwards only what it started
 * (a developer's running environment is left alone). Set
 * GAVEL_TESTENV_KEEP=1 to keep what it started.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const before = await statuses();
  const wasUp = new Set<ServiceName>(before.filter((s) => s.up).map((s) => s.name));
  const startedHere = before.filter((s) => !s.up).map((s) => s.name);
  if (startedHere.length > 0) {
    try {
      await up({ only: startedHere.join(",") });
    } catch (err) {
      // A failed start (a missing tool, a broken CRD) must not leave half an environment running.
      for (const name of startedHere) await stop(name).catch(() => undefined);
      throw err;
    }
  }
  const env = readEnvFile(envFile(paths()));
  Object.assign(process.env, env);
  project.provide("testenv", env);
  return async () => {
    if (process.env.GAVEL_TESTENV_KEEP === "1") return;
    for (const name of startedHere) {
      if (wasUp.has(name)) continue;
      await stop(name);
      // Data outside the checkout (PostgreSQL under /tmp when the checkout is unreachable) would pile up.
      removeExternalData(name);
    }
  };
}

/** Running `gavel dev` as a child process, as a user would. */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { ENV_NAMES } from "../../lib/config.ts";

export const REPO = new URL("../../", import.meta.url).pathname;

export function runGavelDev(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(join(REPO, "node_modules/.bin/node"), [join(REPO, "bin/gavel"), "dev", ...args], {
      cwd: REPO,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** The environment without any service variable (as on a laptop without the test environment). */
export function embeddedEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const n of ENV_NAMES) delete env[n];
  for (const n of Object.keys(env)) if (n.startsWith("S3_") || n.startsWith("AWS_")) delete env[n];
  return env;
}

/** Starts `gavel dev` (serving mode) and collects its output as it comes. */
export function startGavelDev(args: string[], env: NodeJS.ProcessEnv) {
  const child = spawn(join(REPO, "node_modules/.bin/node"), [join(REPO, "bin/gavel"), "dev", ...args], {
    cwd: REPO,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const out = { stdout: "", stderr: "" };
  child.stdout.on("data", (d: Buffer) => {
    out.stdout += d.toString();
  });
  child.stderr.on("data", (d: Buffer) => {
    out.stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  return { child, out, exited };
}

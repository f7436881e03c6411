import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { alive, repoRoot } from "../env/testenv.ts";

const run = promisify(execFile);
const repo = repoRoot();
// A second, private environment (own directory, own ports) so the shared one
// the other tests use is not disturbed. Kafka and kube are left out to keep
// this test cheap; they go through the same code paths.
const dir = join(repo, ".testenv", `lifecycle-${randomUUID().slice(0, 8)}`);
const env = { ...process.env, GAVEL_TESTENV_DIR: dir };
const gavel = (...args: string[]) =>
  run(process.execPath, [join(repo, "bin/gavel"), "testenv", ...args], { env, cwd: repo }).then(
    (r) => ({ code: 0, ...r }),
    (e: { code: number; stdout: string; stderr: string }) => e,
  );

describe("gavel testenv lifecycle", () => {
  afterAll(async () => {
    await gavel("down");
  });

  it("up starts services, a second up is harmless, status reports them, down leaves no process", async () => {
    const first = await gavel("up", "--only", "postgres,s3,prometheus");
    expect(first.code, first.stderr).toBe(0);
    const state1 = JSON.parse(readFileSync(join(dir, "state.json"), "utf8")) as {
      services: Record<string, { pid: number }>;
    };
    const pids = Object.values(state1.services).map((s) => s.pid);
    expect(pids).toHaveLength(3);
    expect(pids.every(alive)).toBe(true);
    const envText = readFileSync(join(dir, "env"), "utf8");
    expect(envText).toMatch(/^export DATABASE_URL='postgres:\/\/gavel@127\.0\.0\.1:\d+\/gavel'$/m);
    expect(envText).toMatch(/^export S3_ENDPOINT='http:\/\/127\.0\.0\.1:\d+'$/m);
    expect(envText).toMatch(/^export PROMETHEUS_URL='http:\/\/127\.0\.0\.1:\d+'$/m);

    const second = await gavel("up", "--only", "postgres,s3,prometheus");
    expect(second.code).toBe(0);
    expect(second.stderr).toMatch(/postgres: already up/);
    const state2 = JSON.parse(readFileSync(join(dir, "state.json"), "utf8")) as typeof state1;
    expect(Object.values(state2.services).map((s) => s.pid)).toEqual(pids);

    const st = await gavel("status");
    expect(st.code).toBe(3); // kafka and kube are not up in this environment
    expect(st.stdout).toMatch(/^postgres\s+up\s+pid=\d+ pg=127\.0\.0\.1:\d+$/m);
    expect(st.stdout).toMatch(/^kafka\s+down/m);

    const down = await gavel("down");
    expect(down.code).toBe(0);
    expect(pids.some(alive)).toBe(false);
    expect(existsSync(dir)).toBe(false);
  });

  it("rejects an unknown service with one clear line", async () => {
    const r = await gavel("up", "--only", "kafka,redis");
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(
      "gavel: unknown service 'redis' in --only; choose from kafka,postgres,s3,kube,prometheus",
    );
  });

  it("says where the Strimzi CRD is missing and how to pass it", async () => {
    const r = await gavel("up", "--only", "kube", "--strimzi-crd", "/nonexistent/043-Crd-kafkatopic.yaml");
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /Strimzi KafkaTopic CRD not found at \/nonexistent\/043-Crd-kafkatopic\.yaml; pass --strimzi-crd FILE/,
    );
  });
});

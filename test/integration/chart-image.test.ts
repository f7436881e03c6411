import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { REPO, run } from "../chart/helm.ts";

// No Docker engine runs here: the image's build stage is tested by running
// its steps (scripts/build-image.sh --step install|build, which the Dockerfile
// calls) in a copy of the committed tree, then checking the pruned tree the
// runtime stage would copy.

describe("Dockerfile", () => {
  it("runs the build script's steps and a non-root, read-only-friendly runtime", async () => {
    const text = await readFile(join(REPO, "Dockerfile"), "utf8");
    expect(text).toMatch(/^ARG NODE_IMAGE=node:24-bookworm-slim$/m);
    expect(text).toMatch(/^FROM \$\{NODE_IMAGE\} AS build$/m);
    expect(text).toMatch(/^FROM \$\{NODE_IMAGE\} AS runtime$/m);
    const runs = [...text.matchAll(/^RUN (scripts\/build-image\.sh .*)$/gm)].map((m) => m[1]);
    expect(runs).toEqual(["scripts/build-image.sh --step install", "scripts/build-image.sh --step build"]);
    expect(text).toMatch(/libssl-dev zlib1g-dev libzstd-dev liblz4-dev libsasl2-dev libcurl4-openssl-dev/);
    expect(text).toMatch(/^USER 10001:10001$/m);
    expect(text).toMatch(/^ENTRYPOINT \["node", "\/app\/bin\/gavel"\]$/m);
    expect(text).toMatch(/COPY --from=build --chown=root:root \/app \/app/);
    expect(text).toContain("ln -s /app/bin/gavel /usr/local/bin/gavel");
    // The install layer has the lock file check it runs (scripts/lockcheck.ts).
    expect(text).toMatch(/^COPY scripts\/build-image\.sh scripts\/lockcheck\.ts scripts\/$/m);
    const build = await readFile(join(REPO, "scripts", "build-image.sh"), "utf8");
    expect(build).toContain("export CKJS_LINKING=dynamic");
    expect(build).toContain("node scripts/lockcheck.ts");
  });
});

describe("scripts/build-image.sh --dry-run", () => {
  it("installs, type-checks and prunes the committed tree; gavel --help runs read-only without devDependencies", () => {
    const r = run(
      "bash",
      [join(REPO, "scripts", "build-image.sh"), "--dry-run", "--ref", "HEAD"],
      undefined,
      1_500_000,
    );
    const log = r.stderr;
    const tail = `${r.stdout}\n${log}`
      .split("\n")
      .filter((l) => !l.includes("npm error") && !l.includes("nodedir"))
      .slice(-60)
      .join("\n");
    expect(log, tail).toContain("[build-image] dry run passed");
    expect(r.status).toBe(0);
    for (const step of [
      "npm ci",
      "checking the installed tree against package-lock.json",
      "type-check (tsc)",
      "npm prune --omit=dev",
      "gavel --help with v24.",
    ])
      expect(log).toContain(`[build-image] ${step}`);
    expect(log).toContain("lockcheck: the installed tree is the locked tree");
  }, 1_600_000);

  it("fails on an unknown argument with usage", () => {
    const r = run("bash", [join(REPO, "scripts", "build-image.sh"), "--frobnicate"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("unknown argument '--frobnicate'");
  });
});

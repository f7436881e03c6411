import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";

function gavel(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ["bin/gavel", ...args], { maxBuffer: 10_000_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe("gavel synth", () => {
  it("prints every manifest as a YAML stream", async () => {
    const r = await gavel(["synth", "-f", "examples/pipeline-full.yaml", "-n", "shop"]);
    expect(r.code, r.stderr).toBe(0);
    const docs = parseAllDocuments(r.stdout).map(
      (d) => d.toJS() as { kind: string; metadata: { namespace: string } },
    );
    expect(docs.filter((d) => d.kind === "KafkaTopic")).toHaveLength(9);
    expect(docs.every((d) => d.metadata.namespace === "shop")).toBe(true);
  });

  it("writes one file per object with --out", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gavel-synth-"));
    const r = await gavel(["synth", "-f", "examples/pipeline-minimal.yaml", "--out", dir]);
    expect(r.code, r.stderr).toBe(0);
    const files = (await readdir(dir)).sort();
    expect(files).toHaveLength(30);
    expect(files).toContain("00-kafkatopic-demo-auctions.yaml");
    const cron = files.find((f) => f.includes("cronjob-demo-rollup"));
    expect(parse(await readFile(join(dir, cron!), "utf8")).spec.concurrencyPolicy).toBe("Forbid");
  });

  it("explains an invalid pipeline file and a missing flag", async () => {
    const bad = await gavel(["synth", "-f", "crds/rbac.yaml"]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain("expected apiVersion: gavel.dev/v1alpha1 and kind: AuctionPipeline");
    const usage = await gavel(["synth"]);
    expect(usage.code).not.toBe(0);
    expect(usage.stderr).toMatch(/required option '-f, --file <pipeline.yaml>' not specified/);
  });
});

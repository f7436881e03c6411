/**
 * Static checks of the chart's observability files: the alert rules pass
 * `promtool check rules` and their unit tests (`promtool test rules`), and
 * every dashboard is a Grafana JSON model with the documented datasource uids.
 * Whether the dashboards' queries return data is proven against real
 * Prometheus and PostgreSQL in test/integration/observability-*.test.ts.
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = new URL("../", import.meta.url).pathname;
const ALERTS = join(ROOT, "charts/gavel/files/alerts");
const DASHBOARDS = join(ROOT, "charts/gavel/files/dashboards");

/** promtool from PATH, else installed the way the test environment installs Prometheus; fails loudly otherwise. */
function promtool(): string {
  try {
    return execFileSync("bash", [join(ROOT, "scripts/install-promtool.sh")], { encoding: "utf8" }).trim();
  } catch (err) {
    throw new Error(`promtool is required for the alert-rule tests: ${(err as Error).message}`);
  }
}

function run(cmd: string, args: string[], cwd: string): { code: number; out: string } {
  try {
    return { code: 0, out: execFileSync(cmd, args, { cwd, encoding: "utf8", stdio: "pipe" }) };
  } catch (err) {
    const e = err as { status?: number; stdout?: string; stderr?: string };
    return { code: e.status ?? 1, out: `${e.stdout ?? ""}${e.stderr ?? ""}` };
  }
}

describe("alert rules", () => {
  const bin = promtool();

  it("pass promtool check rules", () => {
    const r = run(bin, ["check", "rules", "gavel-rules.yaml"], ALERTS);
    expect(r.out).toContain("SUCCESS");
    expect(r.code).toBe(0);
  });

  it("pass their promtool unit tests (lag growing, error rates, no bids, rollup failed, operator)", () => {
    const r = run(bin, ["test", "rules", "gavel-rules.test.yaml"], ALERTS);
    expect(r.out, r.out).toContain("SUCCESS");
    expect(r.code).toBe(0);
  });

  it("a broken expectation makes promtool test rules fail (the test can fail)", () => {
    const t = readFileSync(join(ALERTS, "gavel-rules.test.yaml"), "utf8").replace(
      'summary: "A gold rollup failed in the last hour"',
      'summary: "something else"',
    );
    const dir = execFileSync("mktemp", ["-d"], { encoding: "utf8" }).trim();
    execFileSync("cp", [join(ALERTS, "gavel-rules.yaml"), dir]);
    execFileSync("bash", ["-c", `cat > ${dir}/t.yaml`], { input: t });
    const r = run(bin, ["test", "rules", "t.yaml"], dir);
    expect(r.code).not.toBe(0);
    expect(r.out).toContain("FAILED");
  });

  it("cover the four alerts the pipeline needs", () => {
    const text = readFileSync(join(ALERTS, "gavel-rules.yaml"), "utf8");
    for (const a of [
      "GavelConsumerLagGrowing",
      "GavelBatchErrorRate",
      "GavelIngestErrorRate",
      "GavelNoBids",
      "GavelRollupFailed",
    ])
      expect(text).toContain(`alert: ${a}`);
  });
});

/** The operator board selects its Prometheus with a `datasource` template variable. */
const DATASOURCE_VARIABLE = ["$", "{datasource}"].join("");

interface Panel {
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  targets?: { datasource?: { type: string; uid: string }; expr?: string; rawSql?: string }[];
  panels?: Panel[];
}

describe("dashboards", () => {
  const files = readdirSync(DASHBOARDS).filter((f) => f.endsWith(".json"));

  it("are the four of the seeds plus pipeline health and operator", () => {
    expect(files.sort()).toEqual([
      "auction-performance.json",
      "executive-summary.json",
      "operator.json",
      "pipeline-health.json",
      "realtime-monitor.json",
      "user-analytics.json",
    ]);
  });

  for (const f of files) {
    it(`${f}: Grafana model, schemaVersion >= 39, uids prometheus/postgres, a query in every panel`, () => {
      const d = JSON.parse(readFileSync(join(DASHBOARDS, f), "utf8")) as {
        uid: string;
        title: string;
        schemaVersion: number;
        panels: Panel[];
      };
      expect(d.schemaVersion).toBeGreaterThanOrEqual(39);
      expect(d.uid).toMatch(/^gavel-/);
      expect(d.title).toMatch(/^Gavel \/ /);
      const panels = d.panels.flatMap((p) => [p, ...(p.panels ?? [])]).filter((p) => p.type !== "row");
      expect(panels.length).toBeGreaterThan(3);
      const ids = new Set<number>();
      for (const p of panels) {
        expect(p.targets?.length, p.title).toBeGreaterThan(0);
        for (const t of p.targets ?? []) {
          const ds = t.datasource ?? p.datasource;
          // Fixed uid "prometheus", or the operator board's ${datasource} variable (a Prometheus datasource).
          if (ds?.uid === "prometheus" || ds?.uid === DATASOURCE_VARIABLE) {
            expect(ds.type).toBe("prometheus");
            expect(t.expr, p.title).toMatch(/gavel_/);
          } else {
            expect(ds, p.title).toEqual({ type: "grafana-postgresql-datasource", uid: "postgres" });
            expect(t.rawSql, p.title).toMatch(/\b(silver|gold)\.[a-z_]+/);
          }
        }
        ids.add((p as unknown as { id: number }).id);
      }
      expect(ids.size).toBe(panels.length);
    });
  }
});

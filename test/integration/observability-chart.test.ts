/**
 * The chart ships the alert rules unchanged: `helm template` with
 * prometheusRule.enabled renders a PrometheusRule whose groups equal
 * files/alerts/gavel-rules.yaml (Grafana/Prometheus `{{ $labels }}` templates
 * are not eaten by Helm), and the rendered rules still pass promtool.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { CHART, installHelm, type Manifest, parseManifests, REPO, run, sets } from "../chart/helm.ts";

let helm = "";
beforeAll(() => {
  helm = installHelm();
}, 1_800_000);

function render(extra: string[]): Manifest[] {
  const r = run(helm, ["template", "obs", CHART, "--namespace", "monitoring-test", ...extra]);
  expect(r.stderr, "helm template failed").toBe("");
  expect(r.status).toBe(0);
  return parseManifests(r.stdout);
}

describe("PrometheusRule in the chart", () => {
  it("is off by default", () => {
    expect(render([]).some((d) => d.kind === "PrometheusRule")).toBe(false);
  });

  it("renders the rule file's groups unchanged, with extra labels, and promtool accepts the result", () => {
    const docs = render(sets({ "prometheusRule.enabled": true, "prometheusRule.labels.release": "kps" }));
    const rule = docs.find((d) => d.kind === "PrometheusRule");
    expect(rule?.apiVersion).toBe("monitoring.coreos.com/v1");
    expect(rule?.metadata.labels.release).toBe("kps");
    const file = parse(readFileSync(join(CHART, "files/alerts/gavel-rules.yaml"), "utf8")) as {
      groups: unknown;
    };
    expect(rule?.spec.groups).toEqual(file.groups);
    expect(JSON.stringify(rule?.spec.groups)).toContain("{{ $labels.processor }}");
    const dir = mkdtempSync(join(tmpdir(), "gavel-rules-"));
    writeFileSync(join(dir, "rendered.yaml"), stringify({ groups: rule?.spec.groups }));
    const promtool = execFileSync("bash", [join(REPO, "scripts/install-promtool.sh")], {
      encoding: "utf8",
    }).trim();
    const check = run(promtool, ["check", "rules", join(dir, "rendered.yaml")]);
    expect(check.stdout + check.stderr).toContain("SUCCESS: 7 rules found");
    expect(check.status).toBe(0);
  });

  it("rejects an unknown prometheusRule key (values schema)", () => {
    const r = run(helm, ["template", "obs", CHART, ...sets({ "prometheusRule.enable": true })]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/additional properties|enable/);
  });
});

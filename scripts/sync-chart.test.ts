import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { CRD_FILE } from "../api/v1alpha1/crd.ts";
import { generatedFiles, RBAC_FILE } from "../operator/generate.ts";
import { rbacManifests } from "../operator/rbac.ts";
import { CHART_DIR, chartCopies, staleCopies } from "./sync-chart.ts";

describe("charts/gavel CRD and RBAC sources", () => {
  it("are byte-identical to what `gavel crds` generates (run node scripts/sync-chart.ts)", async () => {
    expect(await staleCopies()).toEqual([]);
    const gen = generatedFiles();
    expect(await readFile(join(CHART_DIR, "crds", CRD_FILE), "utf8")).toBe(gen[CRD_FILE]);
    expect(await readFile(join(CHART_DIR, "files", RBAC_FILE), "utf8")).toBe(gen[RBAC_FILE]);
  });

  it("equal the checked-in crds/ files", async () => {
    for (const [rel, text] of Object.entries(chartCopies())) {
      const name = rel.split("/").at(-1)!;
      expect(await readFile(join("crds", name), "utf8")).toBe(text);
    }
  });

  it("the chart's rbac source holds the operator's ClusterRole and leader-election Role", async () => {
    const docs = parseAllDocuments(await readFile(join(CHART_DIR, "files", RBAC_FILE), "utf8")).map((d) =>
      d.toJS(),
    );
    expect(docs).toEqual(rbacManifests());
    expect(docs.map((d) => d.kind)).toEqual([
      "ServiceAccount",
      "ClusterRole",
      "ClusterRoleBinding",
      "Role",
      "RoleBinding",
    ]);
  });

  it("detects a stale copy", async () => {
    expect(await staleCopies("/nonexistent-chart-dir")).toEqual([`crds/${CRD_FILE}`, `files/${RBAC_FILE}`]);
  });
});

import { randomUUID } from "node:crypto";
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auctionPipelineCrd } from "../../api/v1alpha1/crd.ts";
import { rbacManifests } from "../../operator/rbac.ts";
import { operatorMetrics } from "../../processors/runtime/instrument.ts";
import { Registry } from "../../processors/runtime/metrics.ts";
import { CHART, find, installHelm, type Manifest, parseManifests, run, sets } from "../chart/helm.ts";

// The chart against real tools: helm (built by scripts/install-helm.sh) and
// the test environment's kube-apiserver (KUBECONFIG from .testenv/env).
const suffix = randomUUID().slice(0, 8);
const namespace = `chart-${suffix}`;
const watched = `chart-watch-${suffix}`;
let helm = "";

function template(release: string, ns: string, args: readonly string[] = [], chart = CHART) {
  return run(helm, ["template", release, chart, "--namespace", ns, ...args]);
}

function render(release: string, ns: string, args: readonly string[] = [], chart = CHART): Manifest[] {
  const r = template(release, ns, args, chart);
  expect(r.stderr, "helm template failed").toBe("");
  expect(r.status).toBe(0);
  return parseManifests(r.stdout);
}

const FULL = sets({
  "operator.replicas": 2,
  "operator.watchNamespace": watched,
  "operator.logLevel": "debug",
  "operator.concurrency": 4,
  "otel.endpoint": "http://otel-collector.observability:4318",
  "otel.resourceAttributes.deployment\\.environment": "test",
  "grafana.dashboards.enabled": true,
  "serviceAccount.annotations.example\\.com/owner": "platform",
});

beforeAll(() => {
  helm = installHelm();
  for (const ns of [namespace, watched]) {
    const r = run("kubectl", ["create", "namespace", ns]);
    expect(r.stderr).toBe("");
  }
});

afterAll(() => {
  for (const ns of [namespace, watched]) run("kubectl", ["delete", "namespace", ns, "--wait=false"]);
});

describe("helm lint", () => {
  it("is clean with the default values and with every option set (--strict)", () => {
    for (const args of [[], FULL]) {
      const r = run(helm, ["lint", CHART, "--strict", ...args]);
      expect(r.stdout + r.stderr).not.toMatch(/\[(WARNING|ERROR)\]/);
      expect(r.stdout).toContain("1 chart(s) linted, 0 chart(s) failed");
      expect(r.status).toBe(0);
    }
  });
});

describe("helm package", () => {
  it("packages the CRD, the RBAC source and the dashboards, and no test fixtures", async () => {
    const out = await mkdtemp(join(tmpdir(), "gavel-pkg-"));
    try {
      const r = run(helm, ["package", CHART, "--destination", out]);
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
      const listing = run("tar", ["tzf", join(out, "gavel-0.1.0.tgz")]).stdout.split("\n");
      expect(listing).toEqual(
        expect.arrayContaining([
          "gavel/crds/gavel.dev_auctionpipelines.yaml",
          "gavel/files/rbac.yaml",
          "gavel/files/dashboards/operator.json",
          "gavel/values.schema.json",
        ]),
      );
      expect(listing.filter((f) => /\.test\.(ya?ml|ts)$/.test(f))).toEqual([]);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });
});

describe("helm template accepted by the real kube-apiserver", () => {
  const applyDryRun = (docs: readonly Manifest[], extra: readonly string[] = []) => {
    const input = docs.map((d) => JSON.stringify(d)).join("\n");
    return run("kubectl", ["apply", "--dry-run=server", ...extra, "-f", "-"], input);
  };

  for (const [label, args] of [
    ["default values", []],
    ["every option set", FULL],
  ] as const) {
    it(`${label}: kubectl apply --dry-run=server accepts every object`, () => {
      const release = `r${suffix}`;
      const docs = render(release, namespace, args);
      const kinds = docs.map((d) => d.kind).sort();
      expect(kinds).toEqual(
        expect.arrayContaining(["ClusterRole", "Deployment", "Role", "RoleBinding", "ServiceAccount"]),
      );
      const r = applyDryRun(docs);
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
      const lines = r.stdout.trim().split("\n");
      expect(lines).toHaveLength(docs.length);
      for (const line of lines) expect(line).toMatch(/\((server dry run)\)$/);
    });
  }

  it("the chart's CRD (helm template --include-crds) is accepted by server-side apply", () => {
    const docs = render(`r${suffix}`, namespace, ["--include-crds"]);
    const crd = find(docs, "CustomResourceDefinition");
    // Server-side apply (as Helm and the test environment install CRDs); a
    // client-side apply would merge with whatever CRD version is live.
    const r = run(
      "kubectl",
      ["apply", "--server-side", "--force-conflicts", "--dry-run=server", "-f", "-"],
      JSON.stringify(crd),
    );
    expect(r.stderr).toBe("");
    expect(r.stdout).toContain("auctionpipelines.gavel.dev serverside-applied (server dry run)");
  });

  it("a broken manifest is rejected (the dry run really validates)", () => {
    const docs = render(`r${suffix}`, namespace);
    const dep = structuredClone(find(docs, "Deployment"));
    dep.spec.template.spec.containers[0].securityContext.runAsUser = "root";
    const r = applyDryRun([dep]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/runAsUser/);
  });
});

describe("CRD and RBAC are the generated ones", () => {
  it("the CRD equals api/v1alpha1/crd.ts's output", () => {
    const docs = render("gavel", "gavel-system", ["--include-crds"]);
    expect(find(docs, "CustomResourceDefinition")).toEqual(auctionPipelineCrd());
  });

  it("with release gavel in gavel-system, the RBAC equals crds/rbac.yaml (plus Helm's labels)", () => {
    const docs = render("gavel", "gavel-system");
    for (const want of rbacManifests()) {
      const got = find(docs, want.kind as string, (want.metadata as { name: string }).name);
      const { labels, ...meta } = got.metadata;
      const { labels: wantLabels, ...wantMeta } = want.metadata as Manifest;
      expect({ ...got, metadata: meta }).toEqual({ ...want, metadata: wantMeta });
      expect(labels).toMatchObject(wantLabels);
    }
    expect(docs.filter((d) => d.apiVersion === "rbac.authorization.k8s.io/v1")).toHaveLength(4);
  });

  it("any release and namespace: same rules, names and subjects follow the release", () => {
    const docs = render("shop", namespace);
    const want = rbacManifests({
      namespace,
      name: "shop-gavel-operator",
      serviceAccount: "shop-gavel-operator",
    });
    for (const w of want) {
      const got = find(docs, w.kind as string, (w.metadata as { name: string }).name);
      for (const key of ["rules", "roleRef", "subjects"]) expect(got[key]).toEqual((w as Manifest)[key]);
      expect(got.metadata.namespace).toEqual((w.metadata as Manifest).namespace);
    }
  });

  it("watchNamespace binds the same ClusterRole in that namespace only", () => {
    const docs = render("gavel", namespace, sets({ "operator.watchNamespace": watched }));
    expect(docs.some((d) => d.kind === "ClusterRoleBinding")).toBe(false);
    const rb = find(docs, "RoleBinding", "gavel-operator");
    expect(rb.metadata.namespace).toBe(watched);
    expect(rb.roleRef).toEqual({
      apiGroup: "rbac.authorization.k8s.io",
      kind: "ClusterRole",
      name: "gavel-operator",
    });
    expect(find(docs, "Deployment").spec.template.spec.containers[0].args).toContain(
      `--namespace=${watched}`,
    );
  });
});

describe("operator Deployment", () => {
  it("leader election, probes, non-root read-only container, OTel endpoint", () => {
    const docs = render("gavel", namespace, FULL);
    const dep = find(docs, "Deployment", "gavel-operator");
    expect(dep.spec.replicas).toBe(2);
    const pod = dep.spec.template.spec;
    const c = pod.containers[0];
    expect(c.args.slice(0, 1)).toEqual(["operator"]);
    expect(c.args).toEqual(
      expect.arrayContaining([
        "--lease-name=gavel-operator",
        `--lease-namespace=${namespace}`,
        "--lease-owner-deployment=gavel-operator",
        "--concurrency=4",
      ]),
    );
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001 });
    expect(c.securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
    });
    expect(c.livenessProbe.httpGet).toEqual({ path: "/healthz", port: "health" });
    expect(c.readinessProbe.httpGet).toEqual({ path: "/readyz", port: "health" });
    const env = Object.fromEntries(c.env.map((e: Manifest) => [e.name, e.value ?? e.valueFrom]));
    expect(env).toMatchObject({
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://otel-collector.observability:4318",
      OTEL_SERVICE_NAME: "gavel-operator",
      OTEL_RESOURCE_ATTRIBUTES: `k8s.namespace.name=${namespace},deployment.environment=test`,
      LOG_LEVEL: "debug",
      POD_NAMESPACE: { fieldRef: { fieldPath: "metadata.namespace" } },
    });
    expect(find(docs, "PodDisruptionBudget").spec.minAvailable).toBe(1);
    // without an endpoint no OTel variable is set; one replica has no PDB
    const plain = render("gavel", namespace);
    const plainEnv = find(plain, "Deployment").spec.template.spec.containers[0].env.map(
      (e: Manifest) => e.name,
    );
    expect(plainEnv.filter((n: string) => n.startsWith("OTEL_"))).toEqual([]);
    expect(plain.some((d) => d.kind === "PodDisruptionBudget")).toBe(false);
  });
});

describe("values.schema.json rejects wrong values with a clear message", () => {
  const cases: [Record<string, string | number>, RegExp][] = [
    [{ "operator.replicas": 0 }, /at '\/operator\/replicas': minimum: got 0, want 1/],
    [{ "operator.replicas": "two" }, /at '\/operator\/replicas': got string, want integer/],
    [{ "operator.replica": 2 }, /at '\/operator': additional properties 'replica' not allowed/],
    [{ "image.pullPolicy": "Sometimes" }, /at '\/image\/pullPolicy': value must be one of 'Always'/],
    [
      { "otel.endpoint": "otel-collector:4318" },
      /at '\/otel\/endpoint': 'otel-collector:4318' does not match/,
    ],
    [{ "operator.resources.requests.cpu": "lots" }, /at '\/operator\/resources\/requests\/cpu'/],
    [{ "operator.logLevel": "verbose" }, /at '\/operator\/logLevel': value must be one of/],
    [
      { "grafana.dashboards.labelValue": 1 },
      /at '\/grafana\/dashboards\/labelValue': got number, want string/,
    ],
  ];
  for (const [values, message] of cases) {
    it(`${JSON.stringify(values)}`, () => {
      const r = template("gavel", namespace, sets(values));
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain("values don't meet the specifications of the schema(s)");
      expect(r.stderr).toMatch(message);
      expect(r.stdout).toBe("");
    });
  }

  it("helm install fails the same way and creates no object", () => {
    // Helm installs crds/ before it validates values, so skip them here: the
    // CRD belongs to the other tests on this shared API server.
    const release = `bad${suffix}`;
    const r = run(helm, [
      "install",
      release,
      CHART,
      "--namespace",
      namespace,
      "--skip-crds",
      ...sets({ "operator.replicas": 0 }),
    ]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/at '\/operator\/replicas': minimum: got 0, want 1/);
    expect(run("kubectl", ["get", "deployment", "-n", namespace, "-o", "name"]).stdout).toBe("");
  });
});

describe("Grafana dashboards", () => {
  let chartCopy = "";
  beforeAll(async () => {
    chartCopy = join(await mkdtemp(join(tmpdir(), "gavel-chart-")), "gavel");
    await cp(CHART, chartCopy, { recursive: true });
    await writeFile(
      join(chartCopy, "files", "dashboards", "test_board.json"),
      JSON.stringify({ uid: "gavel-test", title: "Test board", panels: [] }),
    );
  });
  afterAll(async () => {
    if (chartCopy) await rm(join(chartCopy, ".."), { recursive: true, force: true });
  });

  it("each files/dashboards/*.json becomes a ConfigMap labelled for the sidecar", () => {
    const docs = render("gavel", namespace, sets({ "grafana.dashboards.enabled": true }), chartCopy);
    const cm = find(docs, "ConfigMap", "gavel-dashboard-test-board");
    expect(cm.metadata.labels.grafana_dashboard).toBe("1");
    expect(cm.metadata.annotations.grafana_folder).toBe("Gavel");
    expect(JSON.parse(cm.data["test_board.json"])).toMatchObject({ uid: "gavel-test", title: "Test board" });
    const off = render("gavel", namespace, [], chartCopy);
    expect(off.some((d) => d.kind === "ConfigMap")).toBe(false);
  });

  it("the operator dashboard queries only metrics the operator exposes on /metrics", async () => {
    const registry = new Registry("gavel_", { serviceName: "gavel-operator" });
    const m = operatorMetrics(registry);
    m.duration.observe({ result: "success" }, 0.1);
    const exposition = await registry.render();
    await registry.shutdown();
    const board = JSON.parse(await readFile(join(CHART, "files", "dashboards", "operator.json"), "utf8"));
    const exprs: string[] = board.panels.flatMap((p: Manifest) => p.targets.map((t: Manifest) => t.expr));
    const names = new Set(exprs.flatMap((e) => [...e.matchAll(/\bgavel_[a-z_]+/g)].map((x) => x[0])));
    expect(names.size).toBeGreaterThanOrEqual(4);
    for (const name of names) expect(exposition, name).toMatch(new RegExp(`^${name}[{ ]`, "m"));
  });

  it("the bundled dashboards are valid Grafana JSON with a uid and a title", async () => {
    const dir = join(CHART, "files", "dashboards");
    const files = (await readdir(dir)).filter((f) => f.endsWith(".json"));
    const docs = render("gavel", namespace, sets({ "grafana.dashboards.enabled": true }));
    expect(docs.filter((d) => d.kind === "ConfigMap")).toHaveLength(files.length);
    for (const f of files) {
      const board = JSON.parse(await readFile(join(dir, f), "utf8"));
      expect(board.uid, f).toMatch(/^[a-z0-9-]{1,40}$/);
      expect(board.title, f).toBeTruthy();
    }
  });
});

describe("helm install against the test API server", () => {
  it("installs (CRD already present is kept), shows NOTES, uninstalls", () => {
    const release = `gavel-${suffix}`;
    const r = run(helm, ["install", release, CHART, "--namespace", namespace, "--skip-crds"]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("kubectl apply -f examples/pipeline-minimal.yaml");
    const dep = JSON.parse(
      run("kubectl", ["get", "deployment", `${release}-operator`, "-n", namespace, "-o", "json"]).stdout,
    );
    expect(dep.spec.template.spec.serviceAccountName).toBe(`${release}-operator`);
    const crb = run("kubectl", ["get", "clusterrolebinding", `${release}-operator`, "-o", "json"]);
    expect(JSON.parse(crb.stdout).subjects).toEqual([
      { kind: "ServiceAccount", name: `${release}-operator`, namespace },
    ]);
    const u = run(helm, ["uninstall", release, "--namespace", namespace]);
    expect(u.status).toBe(0);
    expect(run("kubectl", ["get", "clusterrole", `${release}-operator`]).status).not.toBe(0);
  });
});

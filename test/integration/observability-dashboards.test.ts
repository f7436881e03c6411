/**
 * Proof that the dashboards and alert rules work on real data:
 *
 * - ingest, bid-processor and silver-writer run as `gavel processor` child
 *   processes on a fresh pipeline (topics, database), the rollup and the
 *   operator in-process with their registries on /metrics; every one is
 *   registered with the test Prometheus through file_sd (label `test` = this
 *   run's suffix) and scraped every 2 s;
 * - a generated dataset is sent through the ingest HTTP API;
 * - EVERY PromQL expression of EVERY dashboard (template variables
 *   substituted, selectors scoped to this run's targets) must return data,
 *   and every metric name it references must have series from this run's
 *   targets; every alert expression must evaluate and its metrics exist;
 * - EVERY SQL panel query runs against the pipeline's PostgreSQL (silver
 *   written by the processors, gold by the rollup) and must return rows;
 * - the processors export traces over OTLP/HTTP to a receiver in this test:
 *   one bid's trace holds the ingest request, the bid-processor's and the
 *   silver-writer's spans.
 */
import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { parsePipeline } from "../../api/v1alpha1/pipeline.ts";
import { readConnectionConfig, requireEnv } from "../../lib/config.ts";
import { startHealthServer } from "../../operator/health.ts";
import { rollupDay } from "../../processors/rollup/rollup.ts";
import { operatorMetrics, recordRollup, rollupMetrics } from "../../processors/runtime/instrument.ts";
import { Registry } from "../../processors/runtime/metrics.ts";
import { createServer as createProcessorServer } from "../../processors/runtime/server.ts";
import { paths } from "../env/testenv.ts";
import { generateDataset } from "../generate/dataset.ts";
import { sendToHttp } from "../generate/sinks.ts";
import {
  createNamespace,
  createPipeline,
  ensureCrd,
  type Manager,
  pipeline as operatorPipeline,
  startOperator,
} from "./operator-support.ts";
import { type Env, logger, REPO, setupEnv, until } from "./processors-harness.ts";

const DASHBOARDS = join(REPO, "charts/gavel/files/dashboards");
const RULES = join(REPO, "charts/gavel/files/alerts/gavel-rules.yaml");
const run = randomUUID().slice(0, 8);
const targetsFile = join(paths().root, "prometheus", "targets", `observability-${run}.json`);

// ---------------------------------------------------------------------------
// Dashboard and rule parsing (exported shapes are Grafana's JSON model)

interface Target {
  expr?: string;
  rawSql?: string;
  datasource?: { uid: string };
}
interface Panel {
  type: string;
  title: string;
  targets?: Target[];
  panels?: Panel[];
  datasource?: { uid: string };
}
interface Dashboard {
  title: string;
  panels: Panel[];
  templating?: { list: { name: string; type: string; allValue?: string; includeAll?: boolean }[] };
}

interface Query {
  readonly where: string;
  readonly kind: "promql" | "sql";
  readonly text: string;
}

function dashboardQueries(): Query[] {
  const out: Query[] = [];
  for (const f of readdirSync(DASHBOARDS).filter((x) => x.endsWith(".json"))) {
    const d = JSON.parse(readFileSync(join(DASHBOARDS, f), "utf8")) as Dashboard;
    const vars = new Map<string, string>();
    for (const v of d.templating?.list ?? []) {
      // Variables are substituted by what "All" means; the datasource variable never appears in a query.
      if (v.type !== "datasource") vars.set(v.name, v.includeAll ? (v.allValue ?? ".*") : ".*");
    }
    const panels = d.panels.flatMap((p) => [p, ...(p.panels ?? [])]).filter((p) => p.type !== "row");
    for (const p of panels) {
      for (const [i, t] of (p.targets ?? []).entries()) {
        const where = `${f} / ${p.title} / ${String.fromCharCode(65 + i)}`;
        if (t.expr !== undefined) out.push({ where, kind: "promql", text: substitutePromql(t.expr, vars) });
        else if (t.rawSql !== undefined) out.push({ where, kind: "sql", text: substituteSql(t.rawSql) });
        else throw new Error(`${where}: a target without expr or rawSql`);
      }
    }
  }
  return out;
}

function substitutePromql(expr: string, vars: ReadonlyMap<string, string>): string {
  let e = expr
    .replaceAll("$__rate_interval", "20s")
    .replaceAll("$__interval", "10s")
    .replaceAll("$__range", "10m");
  for (const [k, v] of vars) e = e.replaceAll(`\${${k}}`, v).replaceAll(`$${k}`, v);
  if (e.includes("$")) throw new Error(`unsubstituted variable in ${expr}`);
  return e;
}

/** Grafana's PostgreSQL macros as Grafana expands them, over the last 30 days. */
function substituteSql(q: string): string {
  const from = new Date(Date.now() - 30 * 86_400_000).toISOString();
  const to = new Date(Date.now() + 86_400_000).toISOString();
  const s = q
    .replace(/\$__timeFilter\(([^)]+)\)/g, `$1 BETWEEN '${from}' AND '${to}'`)
    .replaceAll("$__timeFrom()", `'${from}'`)
    .replaceAll("$__timeTo()", `'${to}'`);
  if (s.includes("$__")) throw new Error(`unsupported macro in ${q}`);
  return s;
}

/** Restricts every gavel_* selector to this run's targets (other tests may be scraped at the same time). */
function scoped(expr: string): string {
  return expr.replace(/\b(gavel_[a-z0-9_]+)(\{([^}]*)\})?/g, (_m, name: string, _b, inner?: string) =>
    inner ? `${name}{test="${run}",${inner}}` : `${name}{test="${run}"}`,
  );
}

function metricNames(expr: string): string[] {
  return [...new Set([...expr.matchAll(/\bgavel_[a-z0-9_]+/g)].map((m) => m[0]))];
}

/** A histogram's _bucket/_sum/_count series exist when its base name is exposed. */
function seriesName(name: string): string {
  return name;
}

// ---------------------------------------------------------------------------
// Prometheus

const promUrl = () => requireEnv(readConnectionConfig(), "prometheusUrl", "PROMETHEUS_URL");

async function promQuery(
  expr: string,
): Promise<{ status: string; data?: { result: unknown[] }; error?: string }> {
  const u = new URL("/api/v1/query", promUrl());
  u.searchParams.set("query", expr);
  const res = await fetch(u);
  return (await res.json()) as { status: string; data?: { result: unknown[] }; error?: string };
}

async function hasSeries(name: string): Promise<boolean> {
  const r = await promQuery(`count({__name__=~"${seriesName(name)}(_bucket|_count|_sum)?",test="${run}"})`);
  return r.status === "success" && (r.data?.result.length ?? 0) > 0;
}

function register(targets: { port: number; processor: string }[]): void {
  writeFileSync(
    targetsFile,
    JSON.stringify(
      targets.map((t) => ({
        targets: [`127.0.0.1:${t.port}`],
        labels: { processor: t.processor, test: run },
      })),
    ),
  );
}

// ---------------------------------------------------------------------------
// OTLP/HTTP receiver (JSON encoding, what the OTLP HTTP exporters send)

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes?: { key: string; value: { stringValue?: string; intValue?: string | number } }[];
}
interface Received {
  spans: { service: string; span: OtlpSpan }[];
  metricNames: Set<string>;
}

function startOtlpReceiver(): Promise<{ server: Server; url: string; received: Received }> {
  const received: Received = { spans: [], metricNames: new Set() };
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (d: Buffer) => {
      body += d.toString("utf8");
    });
    req.on("end", () => {
      try {
        const doc = JSON.parse(body) as {
          resourceSpans?: {
            resource?: { attributes?: { key: string; value: { stringValue?: string } }[] };
            scopeSpans?: { spans?: OtlpSpan[] }[];
          }[];
          resourceMetrics?: { scopeMetrics?: { metrics?: { name: string }[] }[] }[];
        };
        for (const rs of doc.resourceSpans ?? []) {
          const service =
            rs.resource?.attributes?.find((a) => a.key === "service.name")?.value.stringValue ?? "";
          for (const ss of rs.scopeSpans ?? [])
            for (const span of ss.spans ?? []) received.spans.push({ service, span });
        }
        for (const rm of doc.resourceMetrics ?? [])
          for (const sm of rm.scopeMetrics ?? [])
            for (const m of sm.metrics ?? []) received.metricNames.add(m.name);
      } catch {
        // not JSON: not ours to judge here; the assertions below fail if nothing usable arrived
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      resolve({ server, url: `http://127.0.0.1:${port}`, received });
    });
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

// ---------------------------------------------------------------------------

describe("observability: dashboards and alerts against real Prometheus and PostgreSQL", () => {
  let env: Env;
  const children: ChildProcess[] = [];
  const closers: (() => Promise<unknown>)[] = [];
  let otlp: Awaited<ReturnType<typeof startOtlpReceiver>>;
  let manager: Manager | undefined;
  const queries = dashboardQueries();

  beforeAll(async () => {
    env = await setupEnv("obs");
    // Fraud weights high enough that the generated velocity/shill/burst actors raise alerts.
    const spec = {
      ...env.pipeline,
      spec: {
        ...env.pipeline.spec,
        fraud: {
          quarantineThreshold: 0.95,
          alertThreshold: 0.3,
          weights: {
            velocity: 0.4,
            newAccountHighBid: 0.4,
            shillPattern: 0.4,
            amountOutlier: 0.4,
            lastSecondBurst: 0.4,
          },
        },
      },
    };
    writeFileSync(env.pipelineFile, JSON.stringify(parsePipeline(spec)));
    otlp = await startOtlpReceiver();
    closers.push(() => new Promise((r) => otlp.server.close(r)));

    const ports = {
      ingest: await freePort(),
      "bid-processor": await freePort(),
      "silver-writer": await freePort(),
    };
    for (const [name, port] of Object.entries(ports)) {
      const child = spawn(
        process.execPath,
        [join(REPO, "bin/gavel"), "processor", name, "-f", env.pipelineFile],
        {
          env: {
            ...env.childEnv,
            GAVEL_HTTP_PORT: String(port),
            GAVEL_HTTP_HOST: "127.0.0.1",
            GAVEL_INGEST_AUTH: "disabled",
            OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
            OTEL_BSP_SCHEDULE_DELAY: "200",
            OTEL_METRIC_EXPORT_INTERVAL: "1000",
            OTEL_SERVICE_NAME: `gavel-${name}`,
          },
          stdio: ["ignore", "ignore", "pipe"],
        },
      );
      let err = "";
      child.stderr?.on("data", (d: Buffer) => {
        err = (err + d.toString()).slice(-4000);
      });
      child.on("exit", (code, signal) => {
        if (code !== 0 && signal !== "SIGTERM") process.stderr.write(`${name} exited ${code}: ${err}\n`);
      });
      children.push(child);
    }
    for (const port of Object.values(ports))
      await until(`processor on :${port} ready`, async () => {
        const r = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
        return r?.status === 200;
      });

    // The rollup and the operator run in-process; their registries are served like a processor's.
    const rollupRegistry = new Registry("gavel_", { serviceName: "gavel-rollup", env: {} });
    const rollupServer = createProcessorServer({
      logger,
      metrics: rollupRegistry,
      health: { live: () => true, ready: () => ({ ok: true }) },
    });
    await rollupServer.listen({ port: 0, host: "127.0.0.1" });
    closers.push(() => rollupServer.close());
    const operatorRegistry = new Registry("gavel_", { serviceName: "gavel-operator", env: {} });
    await ensureCrd();
    const ns = await createNamespace("obs");
    manager = startOperator(ns, { metrics: operatorMetrics(operatorRegistry) });
    const opHealth = await startHealthServer(manager, 0, "127.0.0.1", operatorRegistry);
    closers.push(() => new Promise((r) => opHealth.server.close(r)));
    await createPipeline(ns, operatorPipeline(`obs-${run}`));

    register([
      ...Object.entries(ports).map(([processor, port]) => ({ processor, port })),
      { processor: "rollup", port: (rollupServer.server.address() as AddressInfo).port },
      { processor: "operator", port: opHealth.port },
    ]);

    // Load: a generated market through the ingest API (auctions end during the run, so they close).
    const ds = generateDataset({ seed: 11, auctions: 20, bids: 800, rate: 250, startMs: Date.now() + 1_500 });
    await sendToHttp({ url: `http://127.0.0.1:${ports.ingest}` }, ds);
    await until(
      "silver has bids, rejections, fraud alerts and transactions",
      async () => {
        const r = await env.pool.query(
          `SELECT (SELECT count(*) FROM silver.bids) AS bids, (SELECT count(*) FROM silver.bid_rejections) AS rej,
                  (SELECT count(*) FROM silver.fraud_alerts) AS alerts, (SELECT count(*) FROM silver.transactions) AS tx`,
        );
        const row = r.rows[0] as Record<string, string>;
        return Object.values(row).every((v) => Number(v) > 0);
      },
      180_000,
    );
    // Gold of today, as the nightly CronJob would build it (partial while auctions are open).
    const day = new Date().toISOString().slice(0, 10);
    const result = await rollupDay({ pool: env.pool, logger }, { day, timeZone: "UTC" });
    recordRollup(rollupMetrics(rollupRegistry), result);
    expect(result.status, result.error).not.toBe("failed");
  }, 420_000);

  afterAll(async () => {
    rmSync(targetsFile, { force: true });
    for (const c of children) c.kill("SIGTERM");
    await Promise.all(
      children.map((c) => (c.exitCode !== null ? undefined : new Promise((r) => c.once("exit", r)))),
    );
    await manager?.stop();
    for (const close of closers) await close().catch(() => undefined);
    await env?.cleanup();
  }, 120_000);

  it("finds queries in every dashboard", () => {
    const files = new Set(queries.map((q) => q.where.split(" / ")[0]));
    expect(files.size).toBe(readdirSync(DASHBOARDS).filter((f) => f.endsWith(".json")).length);
    expect(queries.filter((q) => q.kind === "promql").length).toBeGreaterThan(30);
    expect(queries.filter((q) => q.kind === "sql").length).toBeGreaterThan(20);
  });

  it("every PromQL expression of every dashboard returns data from this run's processors", async () => {
    const promql = queries.filter((q) => q.kind === "promql");
    const failing = new Map<string, string>();
    await until(
      "every dashboard expression to return data",
      async () => {
        failing.clear();
        for (const q of promql) {
          const r = await promQuery(scoped(q.text));
          if (r.status !== "success") failing.set(q.where, `${r.error} in ${q.text}`);
          else if ((r.data?.result.length ?? 0) === 0) failing.set(q.where, `no data: ${scoped(q.text)}`);
        }
        return failing.size === 0;
      },
      120_000,
    ).catch(() => undefined);
    expect(Object.fromEntries(failing)).toEqual({});
  }, 180_000);

  it("every metric a dashboard references is emitted by this run's processors (no `or vector(0)` hides a typo)", async () => {
    const names = new Set(queries.filter((q) => q.kind === "promql").flatMap((q) => metricNames(q.text)));
    const missing: string[] = [];
    for (const n of names) if (!(await hasSeries(n))) missing.push(n);
    expect(missing).toEqual([]);
    // The scoping is real: a metric nobody emits has no series.
    expect(await hasSeries("gavel_nobody_emits_this_total")).toBe(false);
  });

  it("every alert expression evaluates and every metric it watches exists", async () => {
    const doc = parseYaml(readFileSync(RULES, "utf8")) as {
      groups: { rules: { alert: string; expr: string }[] }[];
    };
    const rules = doc.groups.flatMap((g) => g.rules);
    expect(rules.length).toBeGreaterThanOrEqual(5);
    for (const rule of rules) {
      const r = await promQuery(scoped(rule.expr));
      expect(r.status, `${rule.alert}: ${r.error}`).toBe("success");
      for (const n of metricNames(rule.expr)) expect(await hasSeries(n), `${rule.alert}: ${n}`).toBe(true);
    }
    // Healthy run: the lag alert's condition and the rollup-failed condition are not met.
    const failed = await promQuery(scoped('increase(gavel_rollup_runs_total{status="failed"}[1h]) > 0'));
    expect(failed.data?.result).toEqual([]);
  });

  it("every SQL panel query returns rows from the pipeline's silver and gold tables", async () => {
    const failing: Record<string, string> = {};
    for (const q of queries.filter((x) => x.kind === "sql")) {
      try {
        const r = await env.pool.query(q.text);
        if (r.rows.length === 0) failing[q.where] = "no rows";
        else if (!r.rows.some((row: Record<string, unknown>) => Object.values(row).some((v) => v !== null)))
          failing[q.where] = "only NULLs";
      } catch (err) {
        failing[q.where] = (err as Error).message;
      }
    }
    expect(failing).toEqual({});
    // ... and the tables behind them hold data of this run (a COUNT over an empty table is not proof).
    const tables = new Set(
      queries
        .filter((q) => q.kind === "sql")
        .flatMap((q) => [...q.text.matchAll(/\b(silver|gold)\.[a-z_]+/g)].map((m) => m[0])),
    );
    for (const t of tables) {
      const r = await env.pool.query(`SELECT count(*)::int AS n FROM ${t}`);
      expect((r.rows[0] as { n: number }).n, t).toBeGreaterThan(0);
    }
  });

  it("one bid is one trace: ingest request -> bid-processor -> silver write, exported over OTLP", async () => {
    const attr = (s: OtlpSpan, k: string) => s.attributes?.find((a) => a.key === k)?.value.stringValue;
    let trace: string | undefined;
    await until(
      "a trace that spans ingest, bid-processor and silver-writer",
      async () => {
        const byTrace = new Map<string, Set<string>>();
        for (const { service, span } of otlp.received.spans) {
          const tag =
            service === "gavel-ingest" && span.kind === 2 && span.name.startsWith("POST /v1/bids")
              ? "ingest"
              : service === "gavel-bid-processor" &&
                  span.kind === 5 &&
                  attr(span, "messaging.destination.name")?.endsWith(".bids")
                ? "bid-processor"
                : service === "gavel-silver-writer" &&
                    span.kind === 5 &&
                    attr(span, "messaging.destination.name")?.endsWith(".bids.accepted")
                  ? "silver-writer"
                  : undefined;
          if (!tag) continue;
          const set = byTrace.get(span.traceId) ?? new Set();
          set.add(tag);
          byTrace.set(span.traceId, set);
        }
        trace = [...byTrace].find(([, s]) => s.size === 3)?.[0];
        return trace !== undefined;
      },
      60_000,
    );
    // Parent links: silver-writer's span is a child of a bid-processor span of the same trace.
    const spans = otlp.received.spans.filter((s) => s.span.traceId === trace);
    const ids = new Map(spans.map((s) => [s.span.spanId, s]));
    const silver = spans.find((s) => s.service === "gavel-silver-writer" && s.span.parentSpanId);
    expect(silver && ids.get(silver.span.parentSpanId ?? "")?.service).toBe("gavel-bid-processor");
    // Metrics went out over OTLP too.
    expect(otlp.received.metricNames.has("gavel_bids_received_total")).toBe(true);
  }, 90_000);
});

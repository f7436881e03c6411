import { describe, expect, it } from "vitest";
import { Registry, unitOf } from "./metrics.ts";

describe("Registry (OpenTelemetry SDK underneath)", () => {
  it("renders counters, gauges and histograms in the Prometheus text format", async () => {
    const r = new Registry("t_", { env: {} });
    const c = r.counter("records_total", "Records.");
    c.inc({ topic: "a" });
    c.inc({ topic: "a" }, 2);
    r.gauge("lag", "Lag.").set({ partition: "0" }, 7);
    const h = r.histogram("batch_seconds", "Batch.", [0.1, 1]);
    h.observe({}, 0.05);
    h.observe({}, 0.5);
    const text = await r.render();
    expect(text).toMatch(/# TYPE t_records_total counter\nt_records_total\{topic="a"\} 3\n/);
    expect(text).toContain('t_lag{partition="0"} 7');
    expect(text).toContain('t_batch_seconds_bucket{le="0.1"} 1');
    expect(text).toContain('t_batch_seconds_bucket{le="1"} 2');
    expect(text).toContain('t_batch_seconds_bucket{le="+Inf"} 2');
    expect(text).toContain("t_batch_seconds_count 2");
    expect(text).toContain("# UNIT t_batch_seconds s");
    expect(text).toMatch(/t_process_resident_memory_bytes \d+/);
    expect(text).toMatch(/target_info\{[^}]*service_name="gavel"/);
    // No scope labels on every series: dashboards aggregate by our own labels.
    expect(text).not.toContain("otel_scope_name");
    expect(r.counter("records_total", "Records.")).toBe(c);
    expect(c.get({ topic: "a" })).toBe(3);
    await r.shutdown();
  });

  it("keeps registries apart and refuses a name reused with another kind", async () => {
    const a = new Registry("t_", { env: {} });
    const b = new Registry("t_", { env: {} });
    a.counter("x_total", "X.").inc();
    expect(await b.render()).not.toContain("t_x_total");
    expect(() => a.gauge("x_total", "X.")).toThrow(/already registered as a Counter/);
    expect(() => a.counter("x_total", "X.").inc({}, -1)).toThrow(RangeError);
  });

  it("gauges go up, down and away", async () => {
    const r = new Registry("t_", { env: {} });
    const g = r.gauge("open", "Open.");
    g.inc({ p: "1" }, 5);
    g.dec({ p: "1" }, 2);
    g.set({ p: "2" }, 1);
    g.remove({ p: "2" });
    let depth = 4;
    g.track({ p: "q" }, () => depth);
    depth = 9;
    const text = await r.render();
    expect(text).toContain('t_open{p="1"} 3');
    expect(text).not.toContain('t_open{p="2"}');
    expect(text).toContain('t_open{p="q"} 9');
  });

  it("a label set removed after it was collected is gone from the next render", async () => {
    // The OTel SDK keeps exporting every attribute set an async gauge ever observed.
    const r = new Registry("t_", { env: {} });
    const g = r.gauge("lag", "Lag.");
    g.set({ partition: "0" }, 40);
    g.set({ partition: "1" }, 2);
    expect(await r.render()).toContain('t_lag{partition="0"} 40');
    g.remove({ partition: "0" });
    const text = await r.render();
    expect(text).not.toContain('t_lag{partition="0"}');
    expect(text).toContain('t_lag{partition="1"} 2');
    g.set({ partition: "0" }, 7);
    expect(await r.render()).toContain('t_lag{partition="0"} 7');
  });

  it("honours OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES in target_info", async () => {
    const r = new Registry("t_", {
      serviceName: "ingest",
      env: { OTEL_SERVICE_NAME: "gavel-ingest" },
    });
    expect(await r.render()).toMatch(/target_info\{[^}]*service_name="gavel-ingest"/);
  });

  it("derives UCUM units from the name", () => {
    expect(unitOf("gavel_batch_duration_seconds")).toBe("s");
    expect(unitOf("gavel_process_resident_memory_bytes")).toBe("By");
    expect(unitOf("gavel_bids_received_total")).toBe("1");
  });
});

import { describe, expect, it } from "vitest";
import { Registry } from "./metrics.ts";

describe("Registry", () => {
  it("renders counters, gauges and histograms in the Prometheus text format", () => {
    const r = new Registry("t_");
    const c = r.counter("records_total", "Records.");
    c.inc({ topic: "a" });
    c.inc({ topic: "a" }, 2);
    r.gauge("lag", "Lag.").set({ partition: "0" }, 7);
    const h = r.histogram("batch_seconds", "Batch.", [0.1, 1]);
    h.observe({}, 0.05);
    h.observe({}, 0.5);
    const text = r.render();
    expect(text).toContain('# TYPE t_records_total counter\nt_records_total{topic="a"} 3');
    expect(text).toContain('t_lag{partition="0"} 7');
    expect(text).toContain('t_batch_seconds_bucket{le="0.1"} 1');
    expect(text).toContain('t_batch_seconds_bucket{le="1"} 2');
    expect(text).toContain('t_batch_seconds_bucket{le="+Inf"} 2');
    expect(text).toContain("t_batch_seconds_count 2");
    expect(r.counter("records_total", "Records.")).toBe(c);
  });
});

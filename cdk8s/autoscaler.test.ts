import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { AUTOSCALER_PROPS, render } from "../test/cdk8s-render.ts";
import { LAG_METRIC, ProcessorAutoscaler } from "./autoscaler.ts";

describe("the lag metric contract", () => {
  it("the chart's Prometheus Adapter rule serves the metric and labels the HPA selects on", async () => {
    const values = parse(await readFile("charts/gavel/files/prometheus-adapter-values.yaml", "utf8")) as {
      rules: {
        external: { seriesQuery: string; name: { as: string }; metricsQuery: string; resources: unknown }[];
      };
    };
    const [rule] = values.rules.external;
    expect(rule?.name.as).toBe(LAG_METRIC);
    const hpa = render((chart) => {
      new ProcessorAutoscaler(chart, "h", { ...AUTOSCALER_PROPS, lagPerReplica: 100 });
    })[0] as {
      spec: {
        metrics: {
          external?: { metric: { name: string; selector: { matchLabels: Record<string, string> } } };
        }[];
      };
    };
    const external = hpa.spec.metrics.find((m) => m.external)?.external;
    expect(external?.metric.name).toBe(LAG_METRIC);
    for (const label of Object.keys(external?.metric.selector.matchLabels ?? {})) {
      // Every selected label survives the aggregation and exists on the series.
      expect(rule?.metricsQuery).toMatch(new RegExp(`sum by \\([^)]*\\b${label}\\b`));
      expect(rule?.seriesQuery).toContain(`${label}!=""`);
    }
    expect(rule?.resources).toEqual({ overrides: { namespace: { resource: "namespace" } } });
  });
});

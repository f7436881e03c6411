/**
 * Pod discovery for the local cluster's Prometheus. Debian's Prometheus is
 * built without Kubernetes service discovery (`kubernetes_sd_configs` is
 * rejected), so this loop, run inside the node by scripts/cluster/node.sh,
 * writes the pods that ask to be scraped (annotations `prometheus.io/scrape:
 * "true"`, `prometheus.io/port`, `prometheus.io/path`) as a file_sd target
 * file every few seconds. It stops when the node's holder process is gone,
 * and after at most --max-hours.
 *
 *   node test/cluster/prom-targets.ts --kubectl K --kubeconfig F --out FILE --holder PID
 */
import { spawnSync } from "node:child_process";
import { renameSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";

interface Pod {
  metadata: {
    name: string;
    namespace: string;
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
  };
  status: { phase?: string; podIP?: string };
}

export interface FileSdGroup {
  targets: string[];
  labels: Record<string, string>;
}

/** The scrape targets of pods annotated for Prometheus (labels like the usual relabelling). */
function scrapeTargets(pods: readonly Pod[]): FileSdGroup[] {
  const out: FileSdGroup[] = [];
  for (const p of pods) {
    const a = p.metadata.annotations ?? {};
    if (a["prometheus.io/scrape"] !== "true" || p.status.phase !== "Running" || !p.status.podIP) continue;
    const port = a["prometheus.io/port"];
    if (!port) continue;
    const labels: Record<string, string> = { namespace: p.metadata.namespace, pod: p.metadata.name };
    // as the chart's PodMonitor: the pipeline label the lag metric is grouped by
    const pipeline = p.metadata.labels?.["gavel.dev/pipeline"];
    if (pipeline) labels.pipeline = pipeline;
    if (a["prometheus.io/path"]) labels.__metrics_path__ = a["prometheus.io/path"];
    for (const [k, v] of Object.entries(p.metadata.labels ?? {})) {
      labels[`label_${k.replaceAll(/[^a-zA-Z0-9_]/g, "_")}`] = v;
    }
    out.push({ targets: [`${p.status.podIP}:${port}`], labels });
  }
  return out;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      kubectl: { type: "string" },
      kubeconfig: { type: "string" },
      out: { type: "string" },
      holder: { type: "string" },
      "interval-seconds": { type: "string", default: "5" },
      "max-hours": { type: "string", default: "168" },
    },
  });
  const deadline = Date.now() + Number(values["max-hours"]) * 3_600_000;
  const holder = Number(values.holder);
  const intervalMs = Number(values["interval-seconds"]) * 1000;
  while (Date.now() < deadline && alive(holder)) {
    const r = spawnSync(
      values.kubectl!,
      ["--kubeconfig", values.kubeconfig!, "get", "pods", "-A", "-o", "json"],
      {
        encoding: "utf8",
        maxBuffer: 64 * 1024 * 1024,
        timeout: 30_000,
      },
    );
    if (r.status === 0) {
      const groups = scrapeTargets((JSON.parse(r.stdout) as { items: Pod[] }).items);
      writeFileSync(`${values.out}.tmp`, JSON.stringify(groups));
      renameSync(`${values.out}.tmp`, values.out!);
    }
    await new Promise((res) => setTimeout(res, intervalMs));
  }
}

/** /healthz and /readyz for the kubelet's probes, and /metrics (Prometheus text) when given a registry. */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface HealthChecks {
  healthy(): boolean;
  ready(): boolean;
}

export async function startHealthServer(
  checks: HealthChecks,
  port: number,
  host = "0.0.0.0",
  metrics?: { render(): Promise<string> },
): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const path = req.url?.split("?")[0];
    if (path === "/metrics" && metrics) {
      metrics.render().then(
        (text) =>
          res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" }).end(text),
        (err: Error) => res.writeHead(500).end(`${err.message}\n`),
      );
      return;
    }
    const ok = path === "/healthz" ? checks.healthy() : path === "/readyz" ? checks.ready() : undefined;
    if (ok === undefined) {
      res.writeHead(404).end("not found\n");
      return;
    }
    res.writeHead(ok ? 200 : 503, { "content-type": "text/plain" }).end(ok ? "ok\n" : "not ok\n");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  return { server, port: (server.address() as AddressInfo).port };
}

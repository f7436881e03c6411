import {
  existsSync,
  lstatSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import {
  applyCrds,
  defaultCache,
  mkdirp,
  type Paths,
  PrerequisiteError,
  type ProcState,
  progress,
  SERVICE_NAMES,
  SERVICES,
  type ServiceName,
  tcpOpen,
} from "./services.ts";

/**
 * `gavel testenv up | down | status`: real Kafka, PostgreSQL, S3,
 * kube-apiserver + etcd and Prometheus on free 127.0.0.1 ports, data under
 * `.testenv/`, tools cached under `~/.cache/gavel`. State lives in
 * `.testenv/state.json`; `.testenv/env` is the shell-sourceable contract.
 */

export interface TestenvState {
  services: Partial<Record<ServiceName, ProcState>>;
}

export function repoRoot(): string {
  let dir = resolve(import.meta.dirname);
  while (!existsSync(join(dir, "package.json"))) {
    const up = dirname(dir);
    if (up === dir) throw new Error("cannot find the repository root (package.json)");
    dir = up;
  }
  return dir;
}

export function paths(strimziCrd?: string): Paths {
  const repo = repoRoot();
  return {
    repo,
    root: process.env.GAVEL_TESTENV_DIR ?? join(repo, ".testenv"),
    cache: defaultCache(),
    strimziCrd: resolve(
      strimziCrd ??
        process.env.GAVEL_STRIMZI_CRD ??
        join(repo, "..", "shared", "reference", "strimzi", "043-Crd-kafkatopic.yaml"),
    ),
  };
}

const stateFile = (p: Paths): string => join(p.root, "state.json");
export const envFile = (p: Paths): string => join(p.root, "env");

export function readState(p: Paths): TestenvState {
  try {
    return JSON.parse(readFileSync(stateFile(p), "utf8")) as TestenvState;
  } catch {
    return { services: {} };
  }
}

function writeState(p: Paths, st: TestenvState): void {
  mkdirp(p.root);
  writeFileSync(stateFile(p), `${JSON.stringify(st, null, 2)}\n`, { mode: 0o600 });
}

export function alive(pid: number | undefined): boolean {
  if (pid === undefined || !Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Asks the kernel for a free port on 127.0.0.1. */
function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", rej);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr ? res(addr.port) : rej(new Error("no port"))));
    });
  });
}

async function allocatePorts(
  names: readonly string[],
  previous?: Record<string, number>,
): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const n of names) {
    const prev = previous?.[n];
    // Keep a service's port across restarts (clients keep their config) unless someone else took it.
    out[n] = prev !== undefined && !(await tcpOpen(prev)) ? prev : await freePort();
  }
  return out;
}

async function waitReady(name: ServiceName, st: ProcState, timeoutMs: number): Promise<void> {
  const svc = SERVICES[name];
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await svc.ready(st)) return;
    if (!alive(st.pid))
      throw new Error(`${name} exited during start-up; see its log under .testenv/${name}/`);
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(
    `${name} did not become ready within ${timeoutMs / 1000}s; see its log under .testenv/${name}/`,
  );
}

function pidsOf(st: ProcState): number[] {
  const pids = [st.pid];
  if (st.info.etcdPid) pids.push(Number(st.info.etcdPid));
  return pids;
}

async function killGroup(pid: number, signal: NodeJS.Signals): Promise<void> {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

async function stopPids(
  pids: readonly number[],
  signal: NodeJS.Signals = "SIGTERM",
  graceMs = 15_000,
): Promise<void> {
  for (const pid of pids) await killGroup(pid, signal);
  const deadline = Date.now() + graceMs;
  while (pids.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  for (const pid of pids.filter(alive)) await killGroup(pid, "SIGKILL");
  while (pids.some(alive)) await new Promise((r) => setTimeout(r, 50));
}

const READY_TIMEOUT: Record<ServiceName, number> = {
  kafka: 90_000,
  postgres: 60_000,
  s3: 30_000,
  kube: 120_000,
  prometheus: 30_000,
};

export interface UpOptions {
  strimziCrd?: string;
  only?: string;
}

function parseOnly(only: string | undefined): ServiceName[] {
  if (!only) return [...SERVICE_NAMES];
  const names = only.split(",").map((s) => s.trim());
  for (const n of names) {
    if (!SERVICE_NAMES.includes(n as ServiceName)) {
      throw new PrerequisiteError(`unknown service '${n}' in --only; choose from ${SERVICE_NAMES.join(",")}`);
    }
  }
  return names as ServiceName[];
}

async function startService(p: Paths, st: TestenvState, name: ServiceName): Promise<ProcState> {
  const svc = SERVICES[name];
  const prev = st.services[name];
  const ports = await allocatePorts(svc.portNames, prev?.ports);
  progress(
    `${name}: starting on ${Object.entries(ports)
      .map(([k, v]) => `${k}=${v}`)
      .join(" ")}`,
  );
  const started = Date.now();
  const ps = await svc.start(p, ports, prev?.info ?? {});
  st.services[name] = ps;
  writeState(p, st);
  await waitReady(name, ps, READY_TIMEOUT[name]);
  progress(`${name}: ready in ${((Date.now() - started) / 1000).toFixed(1)}s`);
  return ps;
}

/** Starts whatever is not already running. Harmless when everything is up. */
export async function up(opts: UpOptions = {}): Promise<TestenvState> {
  const p = paths(opts.strimziCrd);
  const which = parseOnly(opts.only);
  mkdirp(p.root);
  const st = readState(p);
  const t0 = Date.now();
  for (const name of which) {
    const cur = st.services[name];
    let ps: ProcState;
    if (cur && pidsOf(cur).every(alive) && (await SERVICES[name].ready(cur))) {
      progress(`${name}: already up`);
      ps = cur;
    } else {
      if (cur) await stopPids(pidsOf(cur)); // half-dead leftovers
      await SERVICES[name].install(p);
      ps = await startService(p, st, name);
    }
    writeEnv(p, st);
    // Server-side apply is idempotent: re-applying on every `up` picks up regenerated CRDs.
    if (name === "kube") applyCrds(p, ps.info.kubeconfig!);
  }
  progress(`up in ${((Date.now() - t0) / 1000).toFixed(1)}s; run 'source ${envFile(p)}' to use it`);
  return st;
}

/** Stops a service and starts it again with the same ports and data (fault tests use this). */
export async function restart(
  name: ServiceName,
  opts: { signal?: NodeJS.Signals; downMs?: number } = {},
): Promise<void> {
  const p = paths();
  const st = readState(p);
  const cur = st.services[name];
  if (!cur) throw new Error(`${name} is not part of the running test environment`);
  await stopPids(pidsOf(cur), opts.signal ?? "SIGTERM");
  if (opts.downMs) await new Promise((r) => setTimeout(r, opts.downMs));
  await startService(p, st, name);
}

/** Stops a service without restarting it; `up` or `restart` brings it back. */
export async function stop(name: ServiceName, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  const p = paths();
  const st = readState(p);
  const cur = st.services[name];
  if (cur) await stopPids(pidsOf(cur), signal);
}

export function envVars(p: Paths, st: TestenvState): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of SERVICE_NAMES) {
    const s = st.services[name];
    if (s) Object.assign(env, SERVICES[name].env(s, p));
  }
  return env;
}

function shellQuote(v: string): string {
  return `'${v.replaceAll("'", "'\\''")}'`;
}

/** The services' opt-in variables (see `Service.optInEnv`), written to `.testenv/env` without `export`. */
function optInEnvVars(p: Paths, st: TestenvState): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of SERVICE_NAMES) {
    const s = st.services[name];
    const f = SERVICES[name].optInEnv;
    if (s && f) Object.assign(env, f(s, p));
  }
  return env;
}

function writeEnv(p: Paths, st: TestenvState): void {
  const lines = Object.entries(envVars(p, st)).map(([k, v]) => `export ${k}=${shellQuote(v)}`);
  const optIn = Object.entries(optInEnvVars(p, st));
  if (optIn.length > 0) {
    lines.push(
      "# Kafka's SASL_SSL listener (SCRAM-SHA-512 over TLS, ACLs enforced). Not exported: plaintext",
      "# clients would use them. To run a command over it:",
      "#   export KAFKA_BOOTSTRAP_SERVERS=$KAFKA_SASL_BOOTSTRAP_SERVERS KAFKA_SASL_MECHANISM KAFKA_SASL_USERNAME KAFKA_SASL_PASSWORD KAFKA_TLS_CA",
      ...optIn.map(([k, v]) => `${k}=${shellQuote(v)}`),
    );
  }
  writeFileSync(
    envFile(p),
    `# Written by 'gavel testenv up'. Source it: . .testenv/env\n${lines.join("\n")}\n`,
    {
      mode: 0o600,
    },
  );
}

/**
 * Parses `.testenv/env` (for test setup and tools that do not use a shell):
 * the exported variables, and with `all` the opt-in ones too.
 */
export function readEnvFile(file: string, opts: { all?: boolean } = {}): Record<string, string> {
  const out: Record<string, string> = {};
  const re = opts.all ? /^(?:export )?([A-Z0-9_]+)='(.*)'$/ : /^export ([A-Z0-9_]+)='(.*)'$/;
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const m = re.exec(line);
    if (m) out[m[1]!] = m[2]!.replaceAll("'\\''", "'");
  }
  return out;
}

/**
 * Removes a service's data kept outside `.testenv` (a folder `.testenv/<name>`
 * links to; see `postgresDir`), after `stop`: what `down` would remove there,
 * without touching the rest of `.testenv`.
 */
export function removeExternalData(name: ServiceName): void {
  const link = join(paths().root, name);
  try {
    if (!lstatSync(link).isSymbolicLink()) return;
  } catch {
    return;
  }
  try {
    rmSync(realpathSync(link), { recursive: true, force: true });
  } catch {
    // the target is already gone
  }
  rmSync(link, { force: true });
}

/** Stops everything `up` started and removes the data; leaves the tool cache. */
export async function down(): Promise<void> {
  const p = paths();
  const st = readState(p);
  const pids = Object.values(st.services).flatMap((s) => (s ? pidsOf(s) : []));
  await stopPids(pids);
  for (const name of SERVICE_NAMES) if (st.services[name]) progress(`${name}: stopped`);
  // Data kept outside .testenv (see postgresDir) is linked from it: remove the targets too.
  for (const e of existsSync(p.root) ? readdirSync(p.root, { withFileTypes: true }) : []) {
    if (!e.isSymbolicLink()) continue;
    try {
      rmSync(realpathSync(join(p.root, e.name)), { recursive: true, force: true });
    } catch {
      // the target is already gone
    }
  }
  rmSync(p.root, { recursive: true, force: true });
}

export interface ServiceStatus {
  name: ServiceName;
  up: boolean;
  pid?: number;
  ports?: Record<string, number>;
}

export async function statuses(): Promise<ServiceStatus[]> {
  const p = paths();
  const st = readState(p);
  const out: ServiceStatus[] = [];
  for (const name of SERVICE_NAMES) {
    const s = st.services[name];
    if (!s) {
      out.push({ name, up: false });
      continue;
    }
    const upNow = pidsOf(s).every(alive) && (await SERVICES[name].ready(s));
    out.push({ name, up: upNow, pid: s.pid, ports: s.ports });
  }
  return out;
}

/** Prints one line per service; true when every service is up. */
export async function status(): Promise<boolean> {
  const all = await statuses();
  for (const s of all) {
    const ports = s.ports
      ? Object.entries(s.ports)
          .map(([k, v]) => `${k}=127.0.0.1:${v}`)
          .join(" ")
      : "";
    process.stdout.write(
      `${s.name.padEnd(11)} ${s.up ? "up  " : "down"} ${s.pid ? `pid=${s.pid} ` : ""}${ports}\n`,
    );
  }
  return all.every((s) => s.up);
}

import { spawn, spawnSync } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import {
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { request as httpsRequest } from "node:https";
import { createConnection } from "node:net";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { type CertFiles, ensureCa, ensureServerCert } from "./pki.ts";

/**
 * The services of the test environment: how each is installed (once per
 * machine, cached under ~/.cache/gavel), started (data under .testenv/),
 * checked for readiness, and what it contributes to `.testenv/env`.
 */

export type ServiceName = "kafka" | "postgres" | "s3" | "kube" | "prometheus";
export const SERVICE_NAMES: readonly ServiceName[] = ["kafka", "postgres", "s3", "kube", "prometheus"];

export interface Paths {
  /** Repository root (holds package.json). */
  readonly repo: string;
  /** `.testenv/` in the repository: data, logs, state; git-ignored. */
  readonly root: string;
  /** Machine-wide cache of downloaded and built tools. */
  readonly cache: string;
  /** Strimzi KafkaTopic CRD applied to the API server. */
  readonly strimziCrd: string;
}

/** A running process of the environment and the ports it owns. */
export interface ProcState {
  readonly pid: number;
  readonly ports: Record<string, number>;
  /** Extra facts a service needs to describe itself (credentials, files). */
  readonly info: Record<string, string>;
}

export interface Service {
  readonly name: ServiceName;
  /** Port names this service needs (allocated once, kept across restarts). */
  readonly portNames: readonly string[];
  install(p: Paths): Promise<void>;
  /** Starts the process (detached) and returns its pid and facts. */
  start(p: Paths, ports: Record<string, number>, info: Record<string, string>): Promise<ProcState>;
  ready(st: ProcState): Promise<boolean>;
  env(st: ProcState, p: Paths): Record<string, string>;
  /**
   * Variables written to `.testenv/env` without `export`: settings a shell
   * opts into (e.g. the Kafka SASL_SSL listener's credentials, which would
   * break every plaintext client if exported). `readEnvFile(f, { all: true })` reads them.
   */
  optInEnv?(st: ProcState, p: Paths): Record<string, string>;
}

/** One clear line about a missing prerequisite, with the fix. */
export class PrerequisiteError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PrerequisiteError";
  }
}

export const KAFKA_VERSION = "4.1.1";
export const K8S_VERSION = process.env.GAVEL_K8S_VERSION ?? "v1.34.4";
export const ETCD_VERSION = process.env.GAVEL_ETCD_VERSION ?? "v3.6.16";
export const VERSITYGW_VERSION = process.env.GAVEL_VERSITYGW_VERSION ?? "v1.8.0";

export function defaultCache(): string {
  return process.env.GAVEL_CACHE ?? join(homedir(), ".cache", "gavel");
}

export function progress(msg: string): void {
  process.stderr.write(`[testenv] ${msg}\n`);
}

export function which(cmd: string): string | undefined {
  const r = spawnSync("sh", ["-c", `command -v ${cmd}`], { encoding: "utf8" });
  const out = r.stdout.trim();
  return r.status === 0 && out !== "" ? out : undefined;
}

function run(
  cmd: string,
  args: readonly string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): void {
  const r = spawnSync(cmd, args, { stdio: ["ignore", "inherit", "inherit"], ...opts });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} exited with ${r.status ?? r.signal}`);
}

const isRoot = process.getuid?.() === 0;

/** Installs Debian packages when a command is missing; as root only, else says how. */
function ensureCommand(cmd: string, debPackages: readonly string[], why: string): string {
  const found = which(cmd);
  if (found) return found;
  if (!isRoot || !which("apt-get")) {
    throw new PrerequisiteError(
      `'${cmd}' not found (needed for ${why}); install it, e.g. 'sudo apt-get install ${debPackages.join(" ")}'`,
    );
  }
  progress(`installing ${debPackages.join(" ")} with apt-get (for ${why}) ...`);
  aptInstall(debPackages);
  const after = which(cmd);
  if (!after)
    throw new PrerequisiteError(`'${cmd}' still not found after 'apt-get install ${debPackages.join(" ")}'`);
  return after;
}

let aptUpdated = false;
function aptInstall(pkgs: readonly string[]): void {
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  if (!aptUpdated) {
    run("apt-get", ["update", "-qq"], { env });
    aptUpdated = true;
  }
  run("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...pkgs], { env });
}

export function mkdirp(dir: string): string {
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Starts a long-running process in its own process group, output to a log file. */
function spawnDetached(
  cmd: string,
  args: readonly string[],
  logFile: string,
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; uid?: number; gid?: number } = {},
): number {
  const fd = openSync(logFile, "a");
  const child = spawn(cmd, args, {
    detached: true,
    stdio: ["ignore", fd, fd],
    env: opts.env ?? process.env,
    cwd: opts.cwd,
    uid: opts.uid,
    gid: opts.gid,
  });
  closeSync(fd);
  if (child.pid === undefined) throw new Error(`could not start ${cmd}`);
  child.unref();
  return child.pid;
}

export function tcpOpen(port: number, host = "127.0.0.1", timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ port, host });
    const done = (ok: boolean): void => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once("connect", () => done(true));
    s.once("error", () => done(false));
  });
}

async function httpOk(url: string, headers: Record<string, string> = {}): Promise<boolean> {
  try {
    const res = await fetch(url, { headers, signal: AbortSignal.timeout(2000) });
    return res.ok;
  } catch {
    return false;
  }
}

/** HTTPS GET that accepts the test API server's self-signed certificate. */
function httpsGetInsecure(url: string, token: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      { rejectUnauthorized: false, headers: { Authorization: `Bearer ${token}` }, timeout: 3000 },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => {
          body += c;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

// ---------------------------------------------------------------- Kafka

const kafkaLibs = (p: Paths): string => join(p.cache, `kafka-${KAFKA_VERSION}`, "libs");

/**
 * Kafka's UUID text form: 16 random bytes, URL-safe base64 without padding.
 * Like Kafka's own Uuid.randomUuid(), never one starting with "-": the
 * storage tool's argument parser takes `-t -MfukJ...` for an option (a CI
 * run failed on one, about 1 in 64 starts).
 */
export function kafkaUuid(): string {
  for (;;) {
    const id = randomBytes(16).toString("base64url");
    if (!id.startsWith("-")) return id;
  }
}

/** The SASL user of the test environment's SASL_SSL listener (a super user; least-privilege users are made per test). */
const KAFKA_SASL_USER = "gavel";
/** SASL mechanisms the SASL_SSL listener enables. */
const KAFKA_SASL_MECHANISMS = ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] as const;

const kafkaTlsDir = (p: Paths): string => join(p.root, "kafka", "tls");

/**
 * The CA and broker certificate of the SASL_SSL listener. The certificate
 * names only IP:127.0.0.1 (the advertised address): a client that
 * bootstraps through `localhost` sees a name mismatch, which the refusal
 * tests use.
 */
export function kafkaTls(p: Paths): { ca: CertFiles; broker: CertFiles; keystore: string } {
  const dir = kafkaTlsDir(p);
  const ca = ensureCa(dir, "ca", "gavel-testenv-kafka-ca");
  const broker = ensureServerCert(dir, "broker", ca, { cn: "gavel-testenv-kafka", san: "IP:127.0.0.1" });
  // Kafka's PEM keystore: the PKCS#8 key and the certificate in one file.
  const keystore = join(dir, "broker-keystore.pem");
  if (!existsSync(keystore)) {
    writeFileSync(keystore, readFileSync(broker.key, "utf8") + readFileSync(broker.crt, "utf8"), {
      mode: 0o600,
    });
  }
  return { ca, broker, keystore };
}

/**
 * Creates or updates a SCRAM user (both SCRAM mechanisms) through the Admin
 * API (AlterUserScramCredentials), with Kafka's own ConfigCommand over the
 * plaintext listener (whose ANONYMOUS principal is a super user).
 */
export function kafkaScramUser(
  st: ProcState,
  name: string,
  password: string,
  mechanisms: readonly string[] = ["SCRAM-SHA-512", "SCRAM-SHA-256"],
): void {
  const bootstrap = `127.0.0.1:${st.ports.broker}`;
  // One mechanism per request: the broker refuses two changes of one user's credentials in one.
  for (const mech of mechanisms) {
    const r = spawnSync(
      "java",
      [
        "-Xmx128m",
        `-Dlog4j2.configurationFile=${st.info.log4j}`,
        "-cp",
        st.info.classpath ?? "",
        "kafka.admin.ConfigCommand",
        "--bootstrap-server",
        bootstrap,
        "--alter",
        "--entity-type",
        "users",
        "--entity-name",
        name,
        "--add-config",
        `${mech}=[iterations=4096,password=${password}]`,
      ],
      { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] },
    );
    if (r.status !== 0)
      throw new Error(
        `creating the ${mech} credentials of Kafka user ${name} failed: ${(r.stderr || r.stdout).trim().split("\n").slice(-3).join(" ")}`,
      );
  }
}

async function saslLogin(port: number, caPem: string, user: string, password: string): Promise<boolean> {
  const { Kafka, logLevel } = await import("kafkajs");
  const admin = new Kafka({
    clientId: "gavel-testenv",
    brokers: [`127.0.0.1:${port}`],
    logLevel: logLevel.NOTHING,
    retry: { retries: 0 },
    connectionTimeout: 3000,
    ssl: { ca: [caPem] },
    sasl: { mechanism: "scram-sha-512", username: user, password },
  }).admin();
  try {
    await admin.connect();
    await admin.describeCluster();
    return true;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/**
 * Whether the broker at `bootstrap` answers a metadata request naming at
 * least one broker: it accepts connections before it is ready for that.
 */
export async function kafkaAnswers(
  bootstrap: string,
  clientId: string,
  connectionTimeout: number,
): Promise<boolean> {
  const { Kafka, logLevel } = await import("kafkajs");
  const admin = new Kafka({
    clientId,
    brokers: [bootstrap],
    logLevel: logLevel.NOTHING,
    retry: { retries: 0 },
    connectionTimeout,
  }).admin();
  try {
    await admin.connect();
    return (await admin.describeCluster()).brokers.length > 0;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

export const kafka: Service = {
  name: "kafka",
  portNames: ["broker", "controller", "sasl"],
  async install(p) {
    ensureCommand("java", ["default-jre-headless"], "the Kafka broker");
    ensureCommand("openssl", ["openssl"], "the Kafka TLS listener's certificates");
    const libs = kafkaLibs(p);
    if (existsSync(join(libs, `kafka_2.13-${KAFKA_VERSION}.jar`))) return;
    ensureCommand("mvn", ["maven"], "downloading the Kafka jars from Maven Central");
    progress(
      `downloading Apache Kafka ${KAFKA_VERSION} jars from Maven Central (first time only, ~30 s) ...`,
    );
    const tmp = `${libs}.tmp-${process.pid}`;
    run("mvn", [
      "-B",
      "-q",
      "-f",
      join(p.repo, "scripts/testenv/kafka-pom.xml"),
      `-Dkafka.version=${KAFKA_VERSION}`,
      "dependency:copy-dependencies",
      "-DincludeScope=runtime",
      `-DoutputDirectory=${tmp}`,
    ]);
    renameSync(tmp, libs);
  },
  async start(p, ports, info) {
    const dir = mkdirp(join(p.root, "kafka"));
    const data = join(dir, "data");
    const tls = kafkaTls(p);
    const saslPassword = info.saslPassword ?? randomBytes(18).toString("base64url");
    const scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;";
    const props = [
      "process.roles=broker,controller",
      "node.id=1",
      `controller.quorum.voters=1@127.0.0.1:${ports.controller}`,
      // PLAINTEXT for everything else; SASL_SSL (SCRAM or PLAIN over TLS, ACLs enforced) for the security tests.
      `listeners=PLAINTEXT://127.0.0.1:${ports.broker},CONTROLLER://127.0.0.1:${ports.controller},SASL_SSL://127.0.0.1:${ports.sasl}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${ports.broker},SASL_SSL://127.0.0.1:${ports.sasl}`,
      "controller.listener.names=CONTROLLER",
      "inter.broker.listener.name=PLAINTEXT",
      "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL",
      `listener.name.sasl_ssl.sasl.enabled.mechanisms=${KAFKA_SASL_MECHANISMS.join(",")}`,
      `listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=${scram}`,
      `listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=${scram}`,
      `listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_${KAFKA_SASL_USER}="${saslPassword}";`,
      "listener.name.sasl_ssl.ssl.keystore.type=PEM",
      `listener.name.sasl_ssl.ssl.keystore.location=${tls.keystore}`,
      // ACLs: the standard KRaft authorizer. The plaintext listeners
      // (clients, controller, inter-broker) authenticate as ANONYMOUS, a
      // super user like the SASL user; any other principal gets only what
      // ACLs grant.
      "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
      `super.users=User:ANONYMOUS;User:${KAFKA_SASL_USER}`,
      "allow.everyone.if.no.acl.found=false",
      `log.dirs=${data}`,
      "num.partitions=1",
      "offsets.topic.replication.factor=1",
      "offsets.topic.num.partitions=4",
      "transaction.state.log.replication.factor=1",
      "transaction.state.log.min.isr=1",
      "transaction.state.log.num.partitions=4",
      "share.coordinator.state.topic.replication.factor=1",
      "share.coordinator.state.topic.min.isr=1",
      "group.initial.rebalance.delay.ms=0",
      "auto.create.topics.enable=false",
      "delete.topic.enable=true",
      "log.segment.bytes=67108864",
      "log.retention.check.interval.ms=60000",
      "transaction.abort.timed.out.transaction.cleanup.interval.ms=5000",
      "group.consumer.session.timeout.ms=10000",
      "group.consumer.min.session.timeout.ms=3000",
      "group.min.session.timeout.ms=1000",
    ];
    const propsFile = join(dir, "server.properties");
    writeFileSync(propsFile, `${props.join("\n")}\n`, { mode: 0o600 });
    const log4j = join(dir, "log4j2.properties");
    writeFileSync(
      log4j,
      [
        "status = warn",
        "appender.console.type = Console",
        "appender.console.name = STDOUT",
        "appender.console.layout.type = PatternLayout",
        "appender.console.layout.pattern = [%d] %p %m (%c)%n",
        "rootLogger.level = WARN",
        "rootLogger.appenderRef.stdout.ref = STDOUT",
        "logger.kafka.name = kafka",
        "logger.kafka.level = WARN",
        "",
      ].join("\n"),
    );
    const cp = `${kafkaLibs(p)}/*`;
    const clusterId = info.clusterId ?? kafkaUuid();
    const jvm = ["-Xms256m", "-Xmx512m", "-XX:+UseG1GC", `-Dlog4j2.configurationFile=${log4j}`, "-cp", cp];
    if (!existsSync(join(data, "meta.properties"))) {
      run("java", [
        ...jvm,
        "kafka.tools.StorageTool",
        "format",
        "-t",
        clusterId,
        "-c",
        propsFile,
        "--ignore-formatted",
      ]);
    }
    const pid = spawnDetached("java", [...jvm, "kafka.Kafka", propsFile], join(dir, "kafka.log"));
    return { pid, ports, info: { clusterId, saslPassword, caFile: tls.ca.crt, classpath: cp, log4j } };
  },
  async ready(st) {
    if (!(await tcpOpen(st.ports.broker!))) return false;
    if (!(await kafkaAnswers(`127.0.0.1:${st.ports.broker}`, "gavel-testenv", 2000))) return false;
    // The SASL user's SCRAM credentials live in the cluster metadata: made
    // once through the Admin API, then a login proves the listener is up.
    const sasl = st.ports.sasl;
    const password = st.info.saslPassword;
    if (sasl === undefined || password === undefined) return false;
    const ca = readFileSync(st.info.caFile ?? "", "utf8");
    if (await saslLogin(sasl, ca, KAFKA_SASL_USER, password)) return true;
    kafkaScramUser(st, KAFKA_SASL_USER, password);
    return saslLogin(sasl, ca, KAFKA_SASL_USER, password);
  },
  env(st) {
    return {
      KAFKA_BOOTSTRAP_SERVERS: `127.0.0.1:${st.ports.broker}`,
      KAFKA_SASL_BOOTSTRAP_SERVERS: `127.0.0.1:${st.ports.sasl}`,
    };
  },
  optInEnv(st) {
    return {
      KAFKA_SASL_MECHANISM: "SCRAM-SHA-512",
      KAFKA_SASL_USERNAME: KAFKA_SASL_USER,
      KAFKA_SASL_PASSWORD: st.info.saslPassword ?? "",
      KAFKA_TLS_CA: st.info.caFile ?? "",
    };
  },
};

// ---------------------------------------------------------------- PostgreSQL

function postgresBin(): string | undefined {
  const base = "/usr/lib/postgresql";
  if (!existsSync(base)) return undefined;
  const versions = readdirSync(base)
    .map(Number)
    .filter((v) => Number.isInteger(v) && v >= 15)
    .sort((a, b) => b - a);
  for (const v of versions) {
    const bin = join(base, String(v), "bin");
    if (existsSync(join(bin, "postgres"))) return bin;
  }
  return undefined;
}

/** PostgreSQL refuses to run as root: run it as the `postgres` system user then. */
function postgresUser(): { uid: number; gid: number } | undefined {
  if (!isRoot) return undefined;
  const r = spawnSync("id", ["-u", "postgres"], { encoding: "utf8" });
  const g = spawnSync("id", ["-g", "postgres"], { encoding: "utf8" });
  if (r.status !== 0 || g.status !== 0) {
    throw new PrerequisiteError(
      "PostgreSQL cannot run as root and there is no 'postgres' user; run 'apt-get install postgresql' or run as a normal user",
    );
  }
  return { uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) };
}

/** Whether `u` can enter `dir` (search permission on it and on every parent). */
function reachableBy(dir: string, u: { uid: number; gid: number }): boolean {
  return spawnSync("test", ["-x", dir], { uid: u.uid, gid: u.gid, stdio: "ignore" }).status === 0;
}

/**
 * The PostgreSQL folder. Normally `.testenv/postgres`; when the checkout is
 * in a folder the postgres user cannot enter (run as root from a 0700 home
 * or `mktemp -d` folder), the cluster lives in a folder of its own under the
 * system temp folder and `.testenv/postgres` links to it (`testenv down`
 * removes both).
 */
function postgresDir(root: string, u: { uid: number; gid: number } | undefined): string {
  const link = join(root, "postgres");
  if (!u || reachableBy(root, u)) return mkdirp(link);
  if (!existsSync(link)) {
    rmSync(link, { force: true }); // a link whose target was removed
    symlinkSync(mkdtempSync(join(tmpdir(), "gavel-postgres-")), link);
  }
  return realpathSync(link);
}

function chownTree(dir: string, u: { uid: number; gid: number }): void {
  chownSync(dir, u.uid, u.gid);
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const f = join(dir, e.name);
    if (e.isDirectory()) chownTree(f, u);
    else chownSync(f, u.uid, u.gid);
  }
}

/**
 * The server's TLS identity, made once under `<dir>/tls` and kept: a CA
 * (`ca.crt`, what clients trust: `PG_TLS_CA`) and a certificate for
 * 127.0.0.1 and localhost, so `sslmode=verify-full` works with either host.
 */
function postgresTls(dir: string): { ca: string; server: CertFiles } {
  const tlsDir = join(dir, "tls");
  const ca = ensureCa(tlsDir, "ca", "Gavel test PostgreSQL CA");
  const server = ensureServerCert(tlsDir, "server", ca, {
    cn: "localhost",
    san: "IP:127.0.0.1,DNS:localhost",
  });
  return { ca: ca.crt, server };
}

export const postgres: Service = {
  name: "postgres",
  portNames: ["pg"],
  async install() {
    if (postgresBin()) return;
    if (!isRoot || !which("apt-get")) {
      throw new PrerequisiteError(
        "PostgreSQL >= 15 server not found; install it: 'sudo apt-get install postgresql'",
      );
    }
    progress("installing PostgreSQL server with apt-get ...");
    aptInstall(["postgresql"]);
    if (!postgresBin())
      throw new PrerequisiteError("PostgreSQL >= 15 not found after 'apt-get install postgresql'");
  },
  async start(p, ports, info) {
    const bin = postgresBin()!;
    const user = postgresUser();
    const dir = postgresDir(p.root, user);
    const data = join(dir, "data");
    const sock = mkdirp(join(dir, "run"));
    const asUser = user ? { uid: user.uid, gid: user.gid } : {};
    const tls = postgresTls(dir);
    if (user) chownTree(dir, user); // the key too: postgres refuses a key file it does not own
    if (!existsSync(join(data, "PG_VERSION"))) {
      const r = spawnSync(
        join(bin, "initdb"),
        ["-D", data, "-U", "gavel", "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"],
        { stdio: ["ignore", "pipe", "pipe"], encoding: "utf8", ...asUser },
      );
      if (r.status !== 0) throw new Error(`initdb failed: ${r.stderr}`);
    }
    const logFile = join(dir, "postgres.log");
    writeFileSync(logFile, "", { flag: "a" });
    if (user) chownSync(logFile, user.uid, user.gid);
    const pid = spawnDetached(
      join(bin, "postgres"),
      [
        "-D",
        data,
        "-p",
        String(ports.pg),
        "-k",
        sock,
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        "max_connections=300",
        "-c",
        "shared_buffers=256MB",
        // Durable against a killed server process (the tests do that), not
        // against a power cut, which a test machine does not need.
        "-c",
        "fsync=off",
        "-c",
        "full_page_writes=off",
        "-c",
        "max_locks_per_transaction=256",
        // TLS beside plaintext: the client's sslmode decides.
        "-c",
        "ssl=on",
        "-c",
        `ssl_cert_file=${tls.server.crt}`,
        "-c",
        `ssl_key_file=${tls.server.key}`,
      ],
      logFile,
      asUser,
    );
    return { pid, ports, info: { ...info, database: "gavel", user: "gavel", tlsCa: tls.ca } };
  },
  async ready(st) {
    if (!(await tcpOpen(st.ports.pg!))) return false;
    const { default: pg } = await import("pg");
    const c = new pg.Client({ host: "127.0.0.1", port: st.ports.pg, user: "gavel", database: "postgres" });
    try {
      await c.connect();
      const r = await c.query("SELECT 1 FROM pg_database WHERE datname = 'gavel'");
      if (r.rowCount === 0) await c.query("CREATE DATABASE gavel");
      return true;
    } catch {
      return false;
    } finally {
      await c.end().catch(() => undefined);
    }
  },
  env(st): Record<string, string> {
    const url = `postgres://gavel@127.0.0.1:${st.ports.pg}/gavel`;
    const ca = st.info.tlsCa;
    if (!ca) return { DATABASE_URL: url }; // started before TLS existed: 'testenv down' and 'up' again
    return {
      DATABASE_URL: url,
      DATABASE_TLS_URL: `${url}?sslmode=verify-full&sslrootcert=${encodeURIComponent(ca).replaceAll("%2F", "/")}`,
      PG_TLS_CA: ca,
    };
  },
};

// ---------------------------------------------------------------- S3 (versitygw)

const BUCKET = "gavel";
const goTool = (p: Paths, name: string, version: string): string =>
  join(p.cache, "bin", `${name}-${version}`);

function buildGoTool(p: Paths, what: "kube-apiserver" | "etcd" | "versitygw"): void {
  ensureCommand("go", ["golang"], `building ${what} (Go >= 1.24 is needed; Debian's golang may be too old)`);
  run("bash", [join(p.repo, "scripts/testenv/build-go-tools.sh"), what], {
    env: {
      ...process.env,
      GAVEL_CACHE: p.cache,
      GAVEL_K8S_VERSION: K8S_VERSION,
      GAVEL_ETCD_VERSION: ETCD_VERSION,
      GAVEL_VERSITYGW_VERSION: VERSITYGW_VERSION,
    },
  });
}

export const s3: Service = {
  name: "s3",
  portNames: ["s3"],
  async install(p) {
    if (!existsSync(goTool(p, "versitygw", VERSITYGW_VERSION))) buildGoTool(p, "versitygw");
  },
  async start(p, ports, info) {
    const dir = mkdirp(join(p.root, "s3"));
    const data = mkdirp(join(dir, "data"));
    const meta = mkdirp(join(dir, "meta"));
    const accessKey = info.accessKey ?? "gavel-test";
    const secretKey = info.secretKey ?? randomBytes(18).toString("base64url");
    const pid = spawnDetached(
      goTool(p, "versitygw", VERSITYGW_VERSION),
      ["--port", `127.0.0.1:${ports.s3}`, "posix", "--sidecar", meta, data],
      join(dir, "versitygw.log"),
      { env: { ...process.env, ROOT_ACCESS_KEY: accessKey, ROOT_SECRET_KEY: secretKey } },
    );
    return { pid, ports, info: { accessKey, secretKey } };
  },
  async ready(st) {
    if (!(await tcpOpen(st.ports.s3!))) return false;
    const { S3Client, CreateBucketCommand, HeadBucketCommand } = await import("@aws-sdk/client-s3");
    const client = new S3Client({
      endpoint: `http://127.0.0.1:${st.ports.s3}`,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: { accessKeyId: st.info.accessKey!, secretAccessKey: st.info.secretKey! },
    });
    try {
      try {
        await client.send(new HeadBucketCommand({ Bucket: BUCKET }));
      } catch {
        await client.send(new CreateBucketCommand({ Bucket: BUCKET }));
      }
      return true;
    } catch {
      return false;
    } finally {
      client.destroy();
    }
  },
  env(st) {
    return {
      S3_ENDPOINT: `http://127.0.0.1:${st.ports.s3}`,
      S3_REGION: "us-east-1",
      S3_BUCKET: BUCKET,
      AWS_ACCESS_KEY_ID: st.info.accessKey!,
      AWS_SECRET_ACCESS_KEY: st.info.secretKey!,
    };
  },
};

// ---------------------------------------------------------------- kube-apiserver + etcd

/**
 * The API server and its etcd run as one service: etcd in its own process
 * group, whose pid is kept in `info.etcdPid` so `down` stops both.
 */
export const kube: Service = {
  name: "kube",
  portNames: ["apiserver", "etcd", "etcdPeer"],
  async install(p) {
    ensureCommand("kubectl", ["kubectl"], "applying CRDs to the test API server");
    if (!existsSync(goTool(p, "etcd", ETCD_VERSION))) buildGoTool(p, "etcd");
    if (!existsSync(goTool(p, "kube-apiserver", K8S_VERSION))) buildGoTool(p, "kube-apiserver");
    if (!existsSync(p.strimziCrd)) {
      throw new PrerequisiteError(
        `Strimzi KafkaTopic CRD not found at ${p.strimziCrd}; pass --strimzi-crd FILE (043-Crd-kafkatopic.yaml from a Strimzi release's assets)`,
      );
    }
  },
  async start(p, ports, info) {
    const dir = mkdirp(join(p.root, "kube"));
    const certs = mkdirp(join(dir, "certs"));
    const etcdPid = spawnDetached(
      goTool(p, "etcd", ETCD_VERSION),
      [
        "--data-dir",
        join(dir, "etcd"),
        "--listen-client-urls",
        `http://127.0.0.1:${ports.etcd}`,
        "--advertise-client-urls",
        `http://127.0.0.1:${ports.etcd}`,
        "--listen-peer-urls",
        `http://127.0.0.1:${ports.etcdPeer}`,
        "--initial-advertise-peer-urls",
        `http://127.0.0.1:${ports.etcdPeer}`,
        "--initial-cluster",
        `default=http://127.0.0.1:${ports.etcdPeer}`,
        "--unsafe-no-fsync",
        "--log-level",
        "warn",
      ],
      join(dir, "etcd.log"),
    );
    const saKey = join(certs, "sa.key");
    const saPub = join(certs, "sa.pub");
    if (!existsSync(saKey)) {
      const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
      writeFileSync(saKey, privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
      writeFileSync(saPub, publicKey.export({ type: "spki", format: "pem" }));
    }
    const token = info.adminToken ?? randomBytes(24).toString("hex");
    const tokens = join(certs, "tokens.csv");
    writeFileSync(tokens, `${token},gavel-admin,gavel-admin,"system:masters"\n`, { mode: 0o600 });
    chmodSync(tokens, 0o600);
    const pid = spawnDetached(
      goTool(p, "kube-apiserver", K8S_VERSION),
      [
        `--etcd-servers=http://127.0.0.1:${ports.etcd}`,
        `--cert-dir=${certs}`,
        `--secure-port=${ports.apiserver}`,
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        "--service-cluster-ip-range=10.0.0.0/24",
        "--allow-privileged=true",
        "--authorization-mode=RBAC",
        "--disable-admission-plugins=ServiceAccount",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        `--service-account-key-file=${saPub}`,
        `--service-account-signing-key-file=${saKey}`,
        `--token-auth-file=${tokens}`,
        "--enable-priority-and-fairness=false",
        "--v=0",
      ],
      join(dir, "kube-apiserver.log"),
    );
    const kubeconfig = join(p.root, "kubeconfig");
    writeFileSync(
      kubeconfig,
      [
        "apiVersion: v1",
        "kind: Config",
        "clusters:",
        "- name: gavel-testenv",
        "  cluster:",
        `    server: https://127.0.0.1:${ports.apiserver}`,
        "    insecure-skip-tls-verify: true",
        "users:",
        "- name: gavel-admin",
        "  user:",
        `    token: ${token}`,
        "contexts:",
        "- name: gavel-testenv",
        "  context: {cluster: gavel-testenv, user: gavel-admin, namespace: default}",
        "current-context: gavel-testenv",
        "",
      ].join("\n"),
      { mode: 0o600 },
    );
    return { pid, ports, info: { adminToken: token, etcdPid: String(etcdPid), kubeconfig, crdsApplied: "" } };
  },
  async ready(st) {
    try {
      const r = await httpsGetInsecure(`https://127.0.0.1:${st.ports.apiserver}/readyz`, st.info.adminToken!);
      return r.status === 200;
    } catch {
      return false;
    }
  },
  env(st) {
    return { KUBECONFIG: st.info.kubeconfig! };
  },
};

/** Applies the Strimzi KafkaTopic CRD and Gavel's own CRDs and waits until they are served. */
export function applyCrds(p: Paths, kubeconfig: string): void {
  const files = [p.strimziCrd];
  const own = join(p.repo, "crds");
  if (existsSync(own)) {
    for (const f of readdirSync(own).sort()) {
      if (!/\.ya?ml$/.test(f)) continue;
      const text = readFileSync(join(own, f), "utf8");
      if (/^kind:\s*CustomResourceDefinition/m.test(text)) files.push(join(own, f));
    }
  }
  const env = { ...process.env, KUBECONFIG: kubeconfig };
  for (const f of files) run("kubectl", ["apply", "--server-side", "--force-conflicts", "-f", f], { env });
  // `kubectl wait` fails at once instead of waiting when a CRD has no status
  // yet ("error: .status.conditions accessor error: <nil> is of the type
  // <nil>", seen in a CI rehearsal right after the apply): ask again until
  // the deadline.
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      run("kubectl", ["wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"], { env });
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 500);
    }
  }
}

// ---------------------------------------------------------------- Prometheus

export const prometheus: Service = {
  name: "prometheus",
  portNames: ["http"],
  async install() {
    if (which("prometheus")) return;
    if (!isRoot || !which("apt-get")) {
      throw new PrerequisiteError("'prometheus' not found; install it: 'sudo apt-get install prometheus'");
    }
    progress("installing Prometheus with apt-get ...");
    aptInstall(["prometheus"]);
    // Debian's package may start its own instance on :9090; ours uses its own port and config.
  },
  async start(p, ports) {
    const dir = mkdirp(join(p.root, "prometheus"));
    const targets = mkdirp(join(dir, "targets"));
    const cfg = join(dir, "prometheus.yml");
    writeFileSync(
      cfg,
      [
        "global:",
        "  scrape_interval: 2s",
        "  evaluation_interval: 2s",
        "scrape_configs:",
        "  - job_name: prometheus",
        "    static_configs:",
        `      - targets: ["127.0.0.1:${ports.http}"]`,
        // Processors started by tests register themselves by writing a
        // file_sd JSON file into .testenv/prometheus/targets/.
        "  - job_name: gavel",
        "    file_sd_configs:",
        `      - files: ["${targets}/*.json"]`,
        "        refresh_interval: 2s",
        "",
      ].join("\n"),
    );
    const pid = spawnDetached(
      which("prometheus")!,
      [
        `--config.file=${cfg}`,
        `--storage.tsdb.path=${join(dir, "data")}`,
        `--web.listen-address=127.0.0.1:${ports.http}`,
        "--web.enable-lifecycle",
        "--storage.tsdb.retention.time=1d",
        "--log.level=warn",
      ],
      join(dir, "prometheus.log"),
    );
    return { pid, ports, info: { targets } };
  },
  async ready(st) {
    return httpOk(`http://127.0.0.1:${st.ports.http}/-/ready`);
  },
  env(st) {
    return { PROMETHEUS_URL: `http://127.0.0.1:${st.ports.http}` };
  },
};

export const SERVICES: Record<ServiceName, Service> = { kafka, postgres, s3, kube, prometheus };

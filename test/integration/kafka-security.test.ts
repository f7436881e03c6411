/**
 * Kafka over TLS + SASL on the real broker of the test environment (its
 * SASL_SSL listener: SCRAM-SHA-512, ACLs enforced by the standard
 * authorizer), with both clients:
 * - a pipeline runs end to end as a user that holds exactly the ACLs
 *   `gavel kafka acls` generates, and the outcome is the independently
 *   computed one; `gavel topics apply` and `gavel generate` connect too;
 * - a wrong password, an unknown CA, an expired certificate, a host name the
 *   certificate does not name and a missing ACL each fail fast, in one line
 *   that names the setting to fix;
 * - the password never appears in logs, /metrics or /readyz.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createServer as createTlsServer } from "node:tls";
import kafkajs from "kafkajs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AclRule, pipelineAcls, toKafkajsAcls } from "../../processors/kafka/acls.ts";
import { createTransport } from "../../processors/kafka/client.ts";
import { ensureCa, ensureServerCert } from "../env/pki.ts";
import { kafkaScramUser } from "../env/services.ts";
import { envFile, paths, readEnvFile, readState } from "../env/testenv.ts";
import { generateDataset } from "../generate/dataset.ts";
import { sendToHttp } from "../generate/sinks.ts";
import {
  assertPipelineResult,
  type Env,
  expectedOutcome,
  logger,
  REPO,
  setupEnv,
  silverCounts,
  until,
} from "./processors-harness.ts";
import { datasetFor, sendDataset } from "./processors-scenario.ts";

const INGEST_KEY = "kafka-security-test-key";

const { Kafka, logLevel } = kafkajs;

/** The SASL_SSL listener's settings, from `.testenv/env` (written there unexported). */
const sasl = (() => {
  const all = readEnvFile(envFile(paths()), { all: true });
  for (const k of [
    "KAFKA_SASL_BOOTSTRAP_SERVERS",
    "KAFKA_SASL_MECHANISM",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
    "KAFKA_TLS_CA",
  ])
    if (!all[k])
      throw new Error(
        `${k} missing from .testenv/env: the test environment predates the SASL listener; run 'gavel testenv down' and 'up'`,
      );
  return all as Record<string, string>;
})();

const confluentBuilt = await import("@confluentinc/kafka-javascript").then(
  () => true,
  () => false,
);
const CLIENTS = confluentBuilt ? (["kafkajs", "confluent"] as const) : (["kafkajs"] as const);
if (!confluentBuilt)
  process.stderr.write("kafka-security: librdkafka client not built; testing the kafkajs client only\n");

/** Plaintext admin (ANONYMOUS is a super user there): users' ACLs. */
const plain = new Kafka({
  clientId: "kafka-security-test",
  brokers: [process.env.KAFKA_BOOTSTRAP_SERVERS ?? ""],
  logLevel: logLevel.NOTHING,
}).admin();

interface User {
  readonly name: string;
  readonly password: string;
}

function newUser(label: string): User {
  const user = {
    name: `${label}-${randomBytes(3).toString("hex")}`,
    password: randomBytes(18).toString("base64url"),
  };
  kafkaScramUser(readState(paths()).services.kafka!, user.name, user.password);
  return user;
}

/** The environment of a Gavel process connecting to the SASL_SSL listener as `user`. */
function saslEnv(
  base: NodeJS.ProcessEnv,
  user: User,
  client: string,
  extra: NodeJS.ProcessEnv = {},
): NodeJS.ProcessEnv {
  return {
    ...base,
    KAFKA_BOOTSTRAP_SERVERS: sasl.KAFKA_SASL_BOOTSTRAP_SERVERS,
    KAFKA_SASL_MECHANISM: "SCRAM-SHA-512",
    KAFKA_SASL_USERNAME: user.name,
    KAFKA_SASL_PASSWORD: user.password,
    KAFKA_TLS_CA: sasl.KAFKA_TLS_CA,
    GAVEL_KAFKA_CLIENT: client,
    ...extra,
  };
}

interface Proc {
  readonly child: ChildProcess;
  /** Everything it wrote, stdout and stderr. */
  output(): string;
  exited: Promise<{ code: number | null; ms: number }>;
}

function gavel(args: readonly string[], env: NodeJS.ProcessEnv): Proc {
  const started = Date.now();
  const child = spawn(process.execPath, [join(REPO, "bin/gavel"), ...args], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<{ code: number | null; ms: number }>((resolve) =>
    child.once("exit", (code) => resolve({ code, ms: Date.now() - started })),
  );
  return { child, output: () => out, exited };
}

/** The URL a processor logged with its "running" line (LOG_LEVEL=info). */
async function urlOf(p: Proc, ms = 60_000): Promise<string> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const m = /"url":"(http:[^"]+)"[^\n]*(?:running|listening)"/.exec(p.output());
    if (m) return m[1]!;
    if (p.child.exitCode !== null) throw new Error(`exited ${p.child.exitCode}: ${p.output().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`no 'running' line within ${ms} ms: ${p.output().slice(-2000)}`);
}

async function stop(p: Proc): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill("SIGTERM");
  await p.exited;
}

/** A refusal is one `gavel: ...` line, or the fatal log line, naming the cause. */
function refusalLine(out: string): string {
  const cli = out.split("\n").filter((l) => l.startsWith("gavel: "));
  if (cli.length > 0) return cli.at(-1)!;
  const fatal = out
    .split("\n")
    .filter((l) => l.includes('"level":60'))
    .map((l) => (JSON.parse(l) as { msg: string }).msg);
  return fatal.at(-1) ?? "";
}

const envs: Env[] = [];
const procs: Proc[] = [];

beforeAll(async () => {
  await plain.connect();
});
afterAll(async () => {
  await Promise.all(procs.map(stop));
  for (const e of envs) await e.cleanup().catch(() => undefined);
  await plain.disconnect();
});

async function grant(rules: readonly AclRule[]): Promise<void> {
  await plain.createAcls({ acl: toKafkajsAcls(rules) });
}

describe.each(CLIENTS)("Kafka over SASL_SSL (SCRAM-SHA-512) with the %s client", (client) => {
  it("runs a pipeline end to end as a user holding exactly the ACLs 'gavel kafka acls' generates; the password stays out of logs and metrics", async () => {
    const env = await setupEnv(`sasl-${client === "kafkajs" ? "kjs" : "rdk"}`, 3);
    envs.push(env);
    const user = newUser(env.name);
    const rules = pipelineAcls(env.pipeline, { principal: `User:${user.name}` });
    await grant(rules);

    const childEnv = saslEnv(env.childEnv, user, client, { LOG_LEVEL: "info", GAVEL_API_KEYS: INGEST_KEY });
    const ps = ["ingest", "bid-processor", "silver-writer", "bronze-archiver"].map((name) =>
      gavel(["processor", name, "-f", env.pipelineFile], childEnv),
    );
    procs.push(...ps);
    const urls = await Promise.all(ps.map((p) => urlOf(p)));

    // The source records come from outside the pipeline: the environment's SASL user over the same listener.
    const source = await createTransport(
      {
        brokers: sasl.KAFKA_SASL_BOOTSTRAP_SERVERS!,
        clientId: "kafka-security-source",
        logger,
        security: {
          sasl: {
            mechanism: "scram-sha-512",
            username: sasl.KAFKA_SASL_USERNAME!,
            password: sasl.KAFKA_SASL_PASSWORD!,
          },
          tls: { ca: readFileSync(sasl.KAFKA_TLS_CA!, "utf8") },
        },
      },
      client,
    );
    const ds = generateDataset({ seed: 11, auctions: 12, bids: 600, rate: 300, startMs: Date.now() + 2_000 });
    const exp = expectedOutcome(ds);
    await sendDataset(env, ds, source);
    await assertPipelineResult(env, ds, exp);

    // Ingest over the same listener: every 202 is a record the broker acknowledged (acks=all), and it reaches silver.
    const before = await silverCounts(env);
    const http = datasetFor(env, "h", { seed: 12, auctions: 3, bids: 120, rate: 300 });
    const sent = await sendToHttp({ url: urls[0]!, apiKey: INGEST_KEY }, http);
    expect(sent.failed).toBe(0);
    expect(sent.sent).toBeGreaterThan(100);
    await until("silver to hold the records sent through ingest", async () => {
      const c = await silverCounts(env);
      return c.bids + c.rejections - before.bids - before.rejections >= sent.sent;
    });

    for (const url of urls) {
      const metrics = await (await fetch(`${url}/metrics`)).text();
      const ready = await (await fetch(`${url}/readyz`)).text();
      expect(metrics).toContain("gavel_");
      expect(metrics.includes(user.password), "password in /metrics").toBe(false);
      expect(ready.includes(user.password), "password in /readyz").toBe(false);
    }
    await Promise.all(ps.map(stop));
    for (const p of ps) {
      expect(p.output()).toMatch(/running|listening/);
      expect(p.output().includes(user.password), "password in a log").toBe(false);
    }
  }, 300_000);

  it("'gavel topics apply' and 'gavel generate --to kafka' connect over SASL_SSL", async () => {
    const env = await setupEnv(`sasl-tools-${client === "kafkajs" ? "kjs" : "rdk"}`, 2);
    envs.push(env);
    const user = newUser(env.name);
    await grant(
      pipelineAcls(env.pipeline, { principal: `User:${user.name}`, roles: ["topics-apply", "generate"] }),
    );
    const childEnv = saslEnv(env.childEnv, user, client);
    const apply = gavel(["topics", "apply", "-f", env.pipelineFile], childEnv);
    const a = await apply.exited;
    expect(a.code, apply.output()).toBe(0);
    expect(apply.output()).toContain(`unchanged ${env.topics.bids.name}`);
    const gen = gavel(
      [
        "generate",
        "-f",
        env.pipelineFile,
        "--auctions",
        "2",
        "--bids",
        "40",
        "--rate",
        "0",
        "--to",
        "kafka",
        "--no-progress",
      ],
      childEnv,
    );
    const g = await gen.exited;
    expect(g.code, gen.output()).toBe(0);
    const offsets = await plain.fetchTopicOffsets(env.topics.bids.name);
    expect(offsets.reduce((n, o) => n + Number(o.high), 0)).toBe(40);
    expect(apply.output().includes(user.password) || gen.output().includes(user.password)).toBe(false);
  }, 120_000);
});

describe.each(CLIENTS)("refusals with the %s client: fast, one line, naming the fix", (client) => {
  let env: Env;
  let user: User;
  beforeAll(async () => {
    env = await setupEnv(`sasl-refuse-${client === "kafkajs" ? "kjs" : "rdk"}`, 2);
    envs.push(env);
    user = newUser(env.name);
    await grant(pipelineAcls(env.pipeline, { principal: `User:${user.name}` }));
  });

  /** Starts the silver-writer as `as` with `extra`; it must exit 1 within 30 s without showing a password. */
  async function refused(extra: NodeJS.ProcessEnv, as: User = user): Promise<string> {
    const p = gavel(
      ["processor", "silver-writer", "-f", env.pipelineFile],
      saslEnv(env.childEnv, as, client, extra),
    );
    procs.push(p);
    const timer = setTimeout(() => p.child.kill("SIGKILL"), 60_000);
    const r = await p.exited;
    clearTimeout(timer);
    expect(r.code, p.output()).toBe(1);
    // Fast: no retry loop (the clients' own retries would take a minute or forever).
    expect(r.ms, p.output()).toBeLessThan(30_000);
    expect(p.output().includes(as.password), "password in the output").toBe(false);
    if (extra.KAFKA_SASL_PASSWORD) expect(p.output().includes(extra.KAFKA_SASL_PASSWORD)).toBe(false);
    return refusalLine(p.output());
  }

  it("a wrong password", async () => {
    const line = await refused({ KAFKA_SASL_PASSWORD: `${user.password}x` });
    expect(line).toMatch(/refused the SCRAM-SHA-512 credentials of user '.+' \(authentication failed\)/);
    expect(line).toContain("KAFKA_SASL_PASSWORD");
  });

  it("a CA that did not sign the broker's certificate", async () => {
    const other = ensureCa(mkdtempSync(join(tmpdir(), "gavel-other-ca-")), "ca", "some-other-ca");
    const line = await refused({ KAFKA_TLS_CA: other.crt });
    expect(line).toMatch(/TLS certificate is not signed by a trusted CA/);
    expect(line).toContain("KAFKA_TLS_CA");
  });

  it("a host name the certificate does not name", async () => {
    const port = sasl.KAFKA_SASL_BOOTSTRAP_SERVERS!.split(":")[1];
    const line = await refused({ KAFKA_BOOTSTRAP_SERVERS: `localhost:${port}` });
    expect(line).toMatch(/TLS certificate does not name 'localhost'/);
    expect(line).toContain("KAFKA_BOOTSTRAP_SERVERS");
  });

  it("an expired certificate", async () => {
    // A TLS endpoint presenting a certificate of the cluster's CA that has expired.
    const caDir = dirname(sasl.KAFKA_TLS_CA!);
    const ca = { crt: sasl.KAFKA_TLS_CA!, key: join(caDir, "ca.key") };
    const expired = ensureServerCert(mkdtempSync(join(tmpdir(), "gavel-expired-")), "broker", ca, {
      cn: "expired-broker",
      san: "IP:127.0.0.1",
      days: -1,
    });
    const server = createTlsServer({ cert: readFileSync(expired.crt), key: readFileSync(expired.key) }, (s) =>
      s.destroy(),
    );
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const line = await refused({
        KAFKA_BOOTSTRAP_SERVERS: `127.0.0.1:${(server.address() as AddressInfo).port}`,
      });
      expect(line).toMatch(/TLS certificate has expired/);
    } finally {
      server.close();
    }
  });

  it("a missing ACL: the silver-writer without READ on its consumer group", async () => {
    const other = newUser(`${env.name}-nogroup`);
    const all = pipelineAcls(env.pipeline, { principal: `User:${other.name}` });
    const missing = all.filter(
      (r) => r.resourceType === "group" && r.roles.includes("silver-writer") && r.operation === "read",
    );
    expect(missing.length).toBeGreaterThan(0);
    await grant(all.filter((r) => !missing.includes(r)));
    const line = await refused({}, other);
    expect(line).toMatch(/GROUP_AUTHORIZATION_FAILED/);
    expect(line).toContain("gavel kafka acls -f");
    expect(line).toContain(other.name);
  });
});

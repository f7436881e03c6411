import type { Command } from "commander";
import kafkajs from "kafkajs";
import type pg from "pg";
import { afterEach, describe, expect, it, vi } from "vitest";
import { parse as parseYaml } from "yaml";
import { SCHEMA } from "../../api/events/types.ts";
import {
  type AuctionPipeline,
  allTopics,
  loadPipelineFile,
  parsePipeline,
  topicNames,
} from "../../api/v1alpha1/pipeline.ts";
import { buildProgram } from "../../cli/main.ts";
import { createLogger } from "../../lib/log.ts";
import { provisionTopics, type TopicAdmin } from "../../operator/controller/topics.ts";
import { lampAuction, lampBid } from "../../test/lamp-auction.ts";
import { BidProcessor } from "../bid-processor/processor.ts";
import { BronzeArchiver } from "../bronze-archiver/archiver.ts";
import { Registry } from "../runtime/metrics.ts";
import { SilverWriter } from "../silver-writer/writer.ts";
import {
  type AclCheck,
  type AclRule,
  aclsAllow,
  defaultAclRoles,
  type KafkaClientRole,
  kafkaOperationName,
  pipelineAcls,
  toKafkaAclsCommands,
  toKafkajsAcls,
  toStrimziKafkaUser,
} from "./acls.ts";
import { MemoryBroker, MemoryTransport } from "./memory.ts";
import { readToEnd } from "./read.ts";
import { applyTopics } from "./topics.ts";
import type {
  Admin,
  ConsumerOptions,
  GroupConsumer,
  KafkaRecord,
  Producer,
  TopicMessages,
  TopicPartitionOffset,
  TransactionalProducer,
  Transport,
} from "./transport.ts";

const full = await loadPipelineFile("examples/pipeline-full.yaml");
const minimal = await loadPipelineFile("examples/pipeline-minimal.yaml");

/** `type name pattern Operation`, the identity of a rule. */
const id = (r: AclRule) => `${r.resourceType} ${r.name} ${r.patternType} ${kafkaOperationName(r.operation)}`;

/** The 22 rules of the four processors of a pipeline whose topics are `<name>.<suffix>` (bids.rejected as given). */
function processorRules(name: string, rejected = `${name}.bids.rejected`): string[] {
  const t = (s: string) => `topic ${s} literal`;
  return [
    `${t(`${name}.auctions`)} Read`,
    `${t(`${name}.auctions`)} Write`,
    `${t(`${name}.bids`)} Read`,
    `${t(`${name}.bids`)} Write`,
    `${t(`${name}.bids.accepted`)} Read`,
    `${t(`${name}.bids.accepted`)} Write`,
    `${t(rejected)} Read`,
    `${t(rejected)} Write`,
    `${t(`${name}.fraud-alerts`)} Read`,
    `${t(`${name}.fraud-alerts`)} Write`,
    `${t(`${name}.prices`)} Read`,
    `${t(`${name}.prices`)} Write`,
    `${t(`${name}.transactions`)} Read`,
    `${t(`${name}.transactions`)} Write`,
    `${t(`${name}.users`)} Read`,
    `${t(`${name}.users`)} Write`,
    `group ${name}.bid-processor literal Read`,
    `group ${name}.bid-processor-read- prefixed Read`,
    `group ${name}.bid-processor-tail- prefixed Read`,
    `group ${name}.bronze-archiver literal Read`,
    `group ${name}.silver-writer literal Read`,
    `transactional-id ${name}.bid-processor- prefixed Write`,
  ];
}

function withSpec(p: AuctionPipeline, patch: (spec: Record<string, unknown>) => void): AuctionPipeline {
  const obj = structuredClone(p) as unknown as { spec: Record<string, unknown> };
  patch(obj.spec);
  return parsePipeline(obj, "test");
}

describe("pipelineAcls", () => {
  it("examples/pipeline-full.yaml: the four processors' rules, the dead-letter override, no extra topic", () => {
    const rules = pipelineAcls(full);
    expect(defaultAclRoles(full)).toEqual(["ingest", "bid-processor", "silver-writer", "bronze-archiver"]);
    expect(rules.map(id)).toEqual(processorRules("auctions-eu", "auctions-eu.dead-letter"));
    expect(
      rules.every((r) => r.principal === "User:auctions-eu" && r.host === "*" && r.permission === "allow"),
    ).toBe(true);
    // extra topics are the operator's (provisioner gavel) and `gavel topics apply`'s, no processor's
    expect(rules.some((r) => r.name === "auctions-eu.notifications")).toBe(false);
    const tx = rules.find((r) => r.resourceType === "transactional-id");
    expect(tx?.roles).toEqual(["bid-processor"]);
    expect(rules.find((r) => id(r) === "topic auctions-eu.users literal Read")?.roles).toEqual([
      "bid-processor",
      "silver-writer",
      "bronze-archiver",
    ]);
    for (const r of rules) expect(r.why).toMatch(/^(ingest|bid-processor|silver-writer|bronze-archiver): /);
  });

  it("examples/pipeline-minimal.yaml: every processor with defaults, topics demo.*", () => {
    const rules = pipelineAcls(minimal, { principal: "User:CN=demo" });
    expect(rules.map(id)).toEqual(processorRules("demo"));
    expect(new Set(rules.map((r) => r.principal))).toEqual(new Set(["User:CN=demo"]));
  });

  it("has one rule per (resource, pattern, operation), whatever the roles", () => {
    for (const p of [full, minimal]) {
      const rules = pipelineAcls(p, {
        roles: [
          "ingest",
          "generate",
          "bid-processor",
          "silver-writer",
          "bronze-archiver",
          "operator",
          "topics-apply",
        ],
      });
      const ids = rules.map(id);
      expect(new Set(ids).size).toBe(ids.length);
      const gen = rules.find((r) => r.name === `${p.metadata.name}.bids` && r.operation === "write");
      expect(gen?.roles).toEqual(["ingest", "generate"]);
      expect(gen?.why).toContain("; generate: ");
    }
  });

  it("filters by role", () => {
    expect(pipelineAcls(full, { roles: ["ingest"] }).map(id)).toEqual([
      "topic auctions-eu.auctions literal Write",
      "topic auctions-eu.bids literal Write",
      "topic auctions-eu.users literal Write",
    ]);
    expect(pipelineAcls(full, { roles: ["generate"] }).map(id)).toEqual(
      pipelineAcls(full, { roles: ["ingest"] }).map(id),
    );
    const silver = pipelineAcls(minimal, { roles: ["silver-writer"] }).map(id);
    expect(silver).toEqual([
      "topic demo.auctions literal Read",
      "topic demo.bids.accepted literal Read",
      "topic demo.bids.rejected literal Read",
      "topic demo.fraud-alerts literal Read",
      "topic demo.prices literal Read",
      "topic demo.transactions literal Read",
      "topic demo.users literal Read",
      "group demo.silver-writer literal Read",
    ]);
    const bp = pipelineAcls(minimal, { roles: ["bid-processor"] }).map(id);
    expect(bp).toHaveLength(16);
    expect(bp).not.toContain("topic demo.fraud-alerts literal Read");
    expect(bp).toContain("topic demo.fraud-alerts literal Write");
    expect(bp.filter((r) => r.startsWith("group "))).toHaveLength(3);
  });

  it("topic provisioning: CREATE, ALTER (and ALTER_CONFIGS for the operator) on every topic, extra ones included", () => {
    const apply = pipelineAcls(full, { roles: ["topics-apply"] });
    expect(apply).toHaveLength(allTopics(full).length * 2);
    expect(apply.map(id)).toContain("topic auctions-eu.notifications literal Create");
    expect(new Set(apply.map((r) => r.operation))).toEqual(new Set(["create", "alter"]));
    const op = pipelineAcls(full, { roles: ["operator"] });
    expect(op).toHaveLength(allTopics(full).length * 3);
    expect(op.map(id)).toContain("topic auctions-eu.notifications literal AlterConfigs");
  });

  it("includes the operator by default only with provisioner gavel, and only the processors that run", () => {
    const gavel = withSpec(full, (s) => {
      s.kafka = { bootstrapServers: "kafka:9092", topics: { provisioner: "gavel" } };
      s.processors = { silverWriter: {} };
    });
    expect(defaultAclRoles(gavel)).toEqual(["silver-writer", "operator"]);
    const rules = pipelineAcls(gavel);
    expect(rules.some((r) => r.operation === "alter-configs")).toBe(true);
    expect(rules.some((r) => r.operation === "write")).toBe(false);
  });

  it("grants IDEMPOTENT_WRITE on the cluster only when asked, to the idempotent producers", () => {
    expect(pipelineAcls(full).some((r) => r.resourceType === "cluster")).toBe(false);
    const legacy = pipelineAcls(full, { clusterIdempotentWrite: true });
    const cluster = legacy.filter((r) => r.resourceType === "cluster");
    expect(cluster.map(id)).toEqual(["cluster kafka-cluster literal IdempotentWrite"]);
    expect(cluster[0]?.roles).toEqual(["ingest", "bid-processor"]);
    expect(
      pipelineAcls(full, { roles: ["silver-writer"], clusterIdempotentWrite: true }).some(
        (r) => r.resourceType === "cluster",
      ),
    ).toBe(false);
  });

  it("refuses a principal Kafka would not parse", () => {
    expect(() => pipelineAcls(full, { principal: "auctions-eu" })).toThrow(/principal must be 'Type:name'/);
  });
});

describe("aclsAllow (Kafka's matching and implied operations)", () => {
  const rules = pipelineAcls(minimal);
  const ok = (resourceType: AclCheck["resourceType"], name: string, operation: AclCheck["operation"]) =>
    aclsAllow(rules, { resourceType, name, operation });
  it("matches literal names exactly and prefixed names by prefix", () => {
    expect(ok("group", "demo.bid-processor", "read")).toBe(true);
    expect(ok("group", "demo.bid-processor-read-8f2c", "read")).toBe(true);
    expect(ok("group", "demo.bid-processor-other", "read")).toBe(false);
    expect(ok("transactional-id", "demo.bid-processor-11", "write")).toBe(true);
    expect(ok("transactional-id", "demo.silver-writer-1", "write")).toBe(false);
    expect(ok("topic", "demo.bids2", "read")).toBe(false);
  });
  it("implies DESCRIBE from READ, WRITE and ALTER, DESCRIBE_CONFIGS from ALTER_CONFIGS, nothing else", () => {
    expect(ok("topic", "demo.fraud-alerts", "describe")).toBe(true);
    expect(ok("transactional-id", "demo.bid-processor-0", "describe")).toBe(true);
    expect(ok("topic", "demo.bids", "create")).toBe(false);
    const op = pipelineAcls(minimal, { roles: ["operator"] });
    expect(aclsAllow(op, { resourceType: "topic", name: "demo.bids", operation: "describe-configs" })).toBe(
      true,
    );
    expect(aclsAllow(op, { resourceType: "topic", name: "demo.bids", operation: "describe" })).toBe(true);
    expect(aclsAllow(op, { resourceType: "topic", name: "demo.bids", operation: "read" })).toBe(false);
  });
});

describe("output formats", () => {
  const rules = pipelineAcls(full, { clusterIdempotentWrite: true });

  it("kafkajs: createAcls entries with kafkajs' enum values, one per rule", () => {
    const acl = toKafkajsAcls(rules);
    expect(acl).toHaveLength(rules.length);
    const { AclResourceTypes, AclOperationTypes, AclPermissionTypes, ResourcePatternTypes } = kafkajs;
    expect(acl[0]).toEqual({
      resourceType: AclResourceTypes.TOPIC,
      resourceName: "auctions-eu.auctions",
      resourcePatternType: ResourcePatternTypes.LITERAL,
      principal: "User:auctions-eu",
      host: "*",
      operation: AclOperationTypes.READ,
      permissionType: AclPermissionTypes.ALLOW,
    });
    expect(acl).toContainEqual({
      resourceType: AclResourceTypes.TRANSACTIONAL_ID,
      resourceName: "auctions-eu.bid-processor-",
      resourcePatternType: ResourcePatternTypes.PREFIXED,
      principal: "User:auctions-eu",
      host: "*",
      operation: AclOperationTypes.WRITE,
      permissionType: AclPermissionTypes.ALLOW,
    });
    expect(acl).toContainEqual(
      expect.objectContaining({
        resourceType: AclResourceTypes.CLUSTER,
        resourceName: "kafka-cluster",
        operation: AclOperationTypes.IDEMPOTENT_WRITE,
      }),
    );
    expect(acl.filter((a) => a.resourceType === AclResourceTypes.GROUP)).toHaveLength(5);
  });

  it("kafka-acls.sh: one --add command per resource, naming every rule", () => {
    const lines = toKafkaAclsCommands(rules, "kafka:9093", { commandConfig: "/etc/kafka/admin.properties" });
    const commands = lines.filter((l) => !l.startsWith("#"));
    expect(commands).toHaveLength(
      new Set(rules.map((r) => `${r.resourceType} ${r.patternType} ${r.name}`)).size,
    );
    for (const c of commands)
      expect(c).toMatch(
        /^kafka-acls\.sh --bootstrap-server kafka:9093 --command-config \/etc\/kafka\/admin\.properties --add --allow-principal User:auctions-eu --allow-host '\*' (--operation [A-Za-z]+ )+/,
      );
    for (const r of rules) {
      const resource =
        r.resourceType === "cluster"
          ? "--cluster"
          : `--${r.resourceType} ${r.name} --resource-pattern-type ${r.patternType}`;
      const line = commands.find((c) => c.endsWith(` ${resource}`));
      expect(line, id(r)).toBeDefined();
      expect(line).toContain(`--operation ${kafkaOperationName(r.operation)}`);
    }
    const why = lines.find((l) => l.startsWith("# IdempotentWrite: "));
    expect(why).toMatch(/^# IdempotentWrite: ingest: .*KIP-679.*; bid-processor: .*kafkajs.*KIP-679/);
    const quoted = toKafkaAclsCommands(pipelineAcls(full, { principal: "User:it's" }), "k:1");
    expect(quoted.find((l) => !l.startsWith("#"))).toContain("--allow-principal 'User:it'\\''s'");
  });

  it("Strimzi: a KafkaUser the CRD accepts, holding exactly the rules", () => {
    const user = toStrimziKafkaUser(rules, {
      name: "auctions-eu",
      namespace: "kafka",
      cluster: "my-cluster",
      authentication: "scram-sha-512",
      pipeline: "auctions-eu",
    });
    expect(strimziProblems(user)).toEqual([]);
    expect(user.metadata).toEqual({
      name: "auctions-eu",
      namespace: "kafka",
      labels: { "strimzi.io/cluster": "my-cluster", "gavel.dev/pipeline": "auctions-eu" },
    });
    const pairs = user.spec.authorization.acls.flatMap((a) =>
      a.operations.map((op) =>
        a.resource.type === "cluster"
          ? `cluster kafka-cluster literal ${op}`
          : `${a.resource.type === "transactionalId" ? "transactional-id" : a.resource.type} ${a.resource.name} ${a.resource.patternType === "prefix" ? "prefixed" : "literal"} ${op}`,
      ),
    );
    expect(pairs.sort()).toEqual(rules.map(id).sort());
    expect(user.spec.authorization.acls).toContainEqual({
      type: "allow",
      resource: { type: "transactionalId", name: "auctions-eu.bid-processor-", patternType: "prefix" },
      operations: ["Write"],
      host: "*",
    });
    expect(user.spec.authorization.acls).toContainEqual({
      type: "allow",
      resource: { type: "topic", name: "auctions-eu.prices", patternType: "literal" },
      operations: ["Read", "Write"],
      host: "*",
    });
    expect(() => toStrimziKafkaUser(rules, { name: "User:x", authentication: "tls" })).toThrow(
      /DNS subdomain/,
    );
  });
});

/** The KafkaUser fields Strimzi's CRD (kafkausers.kafka.strimzi.io, v1 and v1beta2) validates, as problems. */
function strimziProblems(u: unknown): string[] {
  const out: string[] = [];
  const o = u as Record<string, unknown>;
  if (o.apiVersion !== "kafka.strimzi.io/v1" && o.apiVersion !== "kafka.strimzi.io/v1beta2")
    out.push("apiVersion");
  if (o.kind !== "KafkaUser") out.push("kind");
  const md = o.metadata as Record<string, unknown> | undefined;
  if (typeof md?.name !== "string") out.push("metadata.name");
  const spec = o.spec as Record<string, unknown> | undefined;
  const authn = spec?.authentication as Record<string, unknown> | undefined;
  if (!["tls", "tls-external", "scram-sha-512"].includes(String(authn?.type)))
    out.push("spec.authentication.type");
  const authz = spec?.authorization as Record<string, unknown> | undefined;
  if (authz?.type !== "simple") out.push("spec.authorization.type");
  if (!Array.isArray(authz?.acls)) return [...out, "spec.authorization.acls"];
  const ops = [
    "Read",
    "Write",
    "Create",
    "Delete",
    "Alter",
    "Describe",
    "ClusterAction",
    "AlterConfigs",
    "DescribeConfigs",
    "IdempotentWrite",
    "All",
  ];
  for (const [i, acl0] of (authz.acls as unknown[]).entries()) {
    const acl = acl0 as Record<string, unknown>;
    const p = `spec.authorization.acls[${i}]`;
    const known = new Set(["type", "resource", "host", "operations", "operation"]);
    for (const k of Object.keys(acl)) if (!known.has(k)) out.push(`${p}.${k}: unknown`);
    if (acl.type !== undefined && acl.type !== "allow" && acl.type !== "deny") out.push(`${p}.type`);
    if (acl.host !== undefined && typeof acl.host !== "string") out.push(`${p}.host`);
    const r = acl.resource as Record<string, unknown> | undefined;
    if (!r || !["topic", "group", "cluster", "transactionalId"].includes(String(r.type)))
      out.push(`${p}.resource.type`);
    else {
      for (const k of Object.keys(r))
        if (!["type", "name", "patternType"].includes(k)) out.push(`${p}.resource.${k}`);
      if (r.type !== "cluster" && typeof r.name !== "string") out.push(`${p}.resource.name`);
      if (r.patternType !== undefined && r.patternType !== "literal" && r.patternType !== "prefix")
        out.push(`${p}.resource.patternType`);
    }
    if (!Array.isArray(acl.operations) || acl.operations.length === 0) out.push(`${p}.operations`);
    else
      for (const op of acl.operations)
        if (!ops.includes(String(op))) out.push(`${p}.operations: ${String(op)}`);
  }
  return out;
}

// ---------------------------------------------------------------------------
// The rules against what the processes do: each Transport call recorded as
// the authorization checks the broker makes for the requests it sends
// (core/src/main/scala/kafka/server/KafkaApis.scala), run on the in-memory
// Kafka. Every check must pass with the role's rules, and without any one
// rule some check must fail.
// ---------------------------------------------------------------------------

/** InitProducerId without a transactional id: IDEMPOTENT_WRITE on the cluster or WRITE on any topic (KIP-679). */
const IDEMPOTENT_INIT = "idempotent InitProducerId";
type Check = AclCheck | typeof IDEMPOTENT_INIT;

function allowed(rules: readonly AclRule[], c: Check): boolean {
  if (c === IDEMPOTENT_INIT)
    return (
      rules.some((r) => r.resourceType === "topic" && r.operation === "write") ||
      aclsAllow(rules, { resourceType: "cluster", name: "kafka-cluster", operation: "idempotent-write" })
    );
  return aclsAllow(rules, c);
}

const describeTopic = (name: string): Check => ({ resourceType: "topic", name, operation: "describe" });

class RecordingTransport implements Transport {
  readonly checks: Check[] = [];
  readonly inner: MemoryTransport;
  constructor(inner: MemoryTransport) {
    this.inner = inner;
  }
  add(...c: Check[]): void {
    this.checks.push(...c);
  }
  #produce(batches: readonly TopicMessages[]): void {
    for (const b of batches)
      this.add(describeTopic(b.topic), { resourceType: "topic", name: b.topic, operation: "write" });
  }
  async producer(): Promise<Producer> {
    this.add(IDEMPOTENT_INIT);
    const p = await this.inner.producer();
    return {
      send: async (b) => {
        this.#produce(b);
        await p.send(b);
      },
      close: () => p.close(),
    };
  }
  async transactionalProducer(txnId: string): Promise<TransactionalProducer> {
    const txn = (operation: AclCheck["operation"]): Check => ({
      resourceType: "transactional-id",
      name: txnId,
      operation,
    });
    // kafkajs: connect (idempotent: true) sends an InitProducerId without the id, then FindCoordinator and InitProducerId with it
    this.add(IDEMPOTENT_INIT, txn("describe"), txn("write"));
    const p = await this.inner.transactionalProducer(txnId);
    return {
      begin: async () => {
        const tx = await p.begin();
        return {
          send: async (b) => {
            this.add(txn("write"));
            this.#produce(b);
            await tx.send(b);
          },
          sendOffsets: async (group, offsets: readonly TopicPartitionOffset[]) => {
            // AddOffsetsToTxn, FindCoordinator(group), TxnOffsetCommit
            this.add(txn("write"), { resourceType: "group", name: group, operation: "read" });
            this.add({ resourceType: "group", name: group, operation: "describe" });
            for (const o of offsets) this.add({ resourceType: "topic", name: o.topic, operation: "read" });
            await tx.sendOffsets(group, offsets);
          },
          commit: async () => {
            this.add(txn("write"));
            await tx.commit();
          },
          abort: async () => {
            this.add(txn("write"));
            await tx.abort();
          },
        };
      },
      close: () => p.close(),
    };
  }
  consumer(opts: ConsumerOptions): GroupConsumer {
    const c = this.inner.consumer(opts);
    const group = (operation: AclCheck["operation"]): Check => ({
      resourceType: "group",
      name: opts.groupId,
      operation,
    });
    return {
      run: async (topics, handlers) => {
        // FindCoordinator, Join/Sync/Heartbeat; Metadata, OffsetFetch, ListOffsets, Fetch
        this.add(group("describe"), group("read"));
        for (const t of topics)
          this.add(describeTopic(t), { resourceType: "topic", name: t, operation: "read" });
        await c.run(topics, handlers);
      },
      commit: async (offsets) => {
        this.add(group("read"));
        for (const o of offsets) this.add({ resourceType: "topic", name: o.topic, operation: "read" });
        await c.commit(offsets);
      },
      positions: () => c.positions(),
      failure: () => c.failure(),
      seek: (t, p, o) => c.seek(t, p, o),
      stop: async () => {
        this.add(group("read")); // LeaveGroup
        await c.stop();
      },
    };
  }
  async admin(): Promise<Admin> {
    const a = await this.inner.admin();
    return {
      describeTopics: async (names) => {
        const have = await a.describeTopics(names);
        // listTopics hides what the principal may not describe; the named Metadata needs DESCRIBE
        for (const n of have.keys()) this.add(describeTopic(n));
        return have;
      },
      createTopics: async (specs) => {
        for (const s of specs)
          this.add({ resourceType: "topic", name: s.name, operation: "create" }, describeTopic(s.name));
        await a.createTopics(specs);
      },
      createPartitions: async (name, n) => {
        this.add({ resourceType: "topic", name, operation: "alter" });
        await a.createPartitions(name, n);
      },
      deleteTopics: () => Promise.reject(new Error("no Gavel process deletes topics")),
      topicOffsets: async (name) => {
        this.add(describeTopic(name));
        return a.topicOffsets(name);
      },
      groupOffsets: async (g, t) => {
        this.add({ resourceType: "group", name: g, operation: "describe" }, describeTopic(t));
        return a.groupOffsets(g, t);
      },
      brokerCount: () => a.brokerCount(), // Metadata without topics: no ACL
      close: () => a.close(),
    };
  }
}

/** Every check passes with the rules, and removing any single rule makes one fail. */
function expectExactly(rules: readonly AclRule[], checks: readonly Check[]): void {
  expect(checks.length).toBeGreaterThan(0);
  const denied = checks.filter((c) => !allowed(rules, c));
  expect(denied).toEqual([]);
  for (const r of rules) {
    const without = rules.filter((x) => x !== r);
    expect(
      checks.some((c) => !allowed(without, c)),
      `rule ${id(r)} is not needed by what the process did`,
    ).toBe(true);
  }
}

const silent = (name: string) => createLogger(name, process.env.LOG_LEVEL ?? "silent");

function testPipeline(partitions = 1, retentionMs = 604_800_000): AuctionPipeline {
  return parsePipeline(
    {
      apiVersion: "gavel.dev/v1alpha1",
      kind: "AuctionPipeline",
      metadata: { name: "acltest" },
      spec: {
        kafka: { clusterName: "embedded", bootstrapServers: "embedded:9092" },
        topics: { partitions, replicas: 1, retentionMs, extra: [{ name: "acltest.extra" }] },
        storage: {
          postgres: { secretRef: { name: "embedded" } },
          s3: { bucket: "gavel-dev", credentialsSecretRef: { name: "embedded" } },
        },
      },
    },
    "test",
  );
}

async function until(what: string, f: () => Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function committed(broker: MemoryBroker, topic: string): Promise<KafkaRecord[]> {
  const t = new MemoryTransport(broker);
  const out: KafkaRecord[] = [];
  await readToEnd({
    transport: t,
    admin: await t.admin(),
    topic,
    groupPrefix: "acl-test",
    onRecord: (r) => out.push(r),
  });
  return out;
}

describe("the rules are exactly what the processes do (in-memory Kafka)", () => {
  const p = testPipeline();
  const topics = topicNames(p);
  const rulesOf = (role: KafkaClientRole) => pipelineAcls(p, { roles: [role] });
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of closers.splice(0).reverse()) await c();
  });

  async function brokerWithTopics(): Promise<MemoryBroker> {
    const broker = new MemoryBroker({ logger: silent("memory") });
    const admin = await new MemoryTransport(broker).admin();
    await applyTopics(
      admin,
      allTopics(p).map((t) => ({ name: t.name, partitions: t.partitions, configs: t.config })),
    );
    return broker;
  }

  it("bid-processor: consumes, decides in transactions, restarts and rebuilds from its outputs", async () => {
    const broker = await brokerWithTopics();
    const iso = (ms: number) => new Date(ms).toISOString();
    const now = Date.now();
    const auction = (id: string, endsMs: number) => lampAuction(id, now - 3_600_000, endsMs);
    const bid = (bidId: string, amount: number) => lampBid({ bid_id: bidId, auction_id: "open", amount });
    const setup = await new MemoryTransport(broker).producer();
    await setup.send([
      {
        topic: topics.users.name,
        messages: [
          {
            key: "u-1",
            value: JSON.stringify({
              schema: SCHEMA.user,
              user_id: "u-1",
              created_at: iso(now - 86_400_000),
              country: "DE",
              rating: 4.5,
            }),
          },
        ],
      },
      {
        topic: topics.auctions.name,
        messages: [
          { key: "ended", value: JSON.stringify(auction("ended", now - 60_000)) },
          { key: "open", value: JSON.stringify(auction("open", now + 3_600_000)) },
        ],
      },
    ]);
    await setup.send([
      {
        topic: topics.bids.name,
        messages: [
          { key: "open", value: JSON.stringify(bid("b-ok", 150)) },
          { key: "open", value: JSON.stringify(bid("b-low", 50)) },
        ],
      },
    ]);
    const rec = new RecordingTransport(new MemoryTransport(broker));
    const start = async () => {
      const admin = await rec.admin();
      const bp = new BidProcessor({
        transport: rec,
        admin,
        pipeline: p,
        topics,
        logger: silent("bid-processor"),
        metrics: new Registry(),
        tickMs: 50,
      });
      await bp.start();
      return bp;
    };
    const first = await start();
    closers.push(() => first.close());
    await until(
      "a closed auction, an accepted and a rejected bid",
      async () =>
        (await committed(broker, topics.transactions.name)).length > 0 &&
        (await committed(broker, topics["bids.accepted"].name)).length > 0 &&
        (await committed(broker, topics["bids.rejected"].name)).length > 0,
      20_000,
    );
    await closers.pop()?.();
    // A restart rebuilds from prices, bids.accepted, bids.rejected and transactions.
    const second = await start();
    closers.push(() => second.close());
    await until("the rebuild", async () => second.ready().ok, 20_000);
    expectExactly(rulesOf("bid-processor"), rec.checks);
    expect(rec.checks).toContainEqual({
      resourceType: "topic",
      name: topics.transactions.name,
      operation: "read",
    });
  }, 60_000);

  it("silver-writer: its group and the seven topics it writes to silver", async () => {
    const broker = await brokerWithTopics();
    const rec = new RecordingTransport(new MemoryTransport(broker));
    const writer = new SilverWriter({
      transport: rec,
      pool: {} as unknown as pg.Pool, // no records: the writer never reaches the database
      pipeline: p,
      topics,
      logger: silent("silver-writer"),
      metrics: new Registry(),
    });
    await writer.start();
    closers.push(() => writer.close());
    await until("consuming", async () => writer.ready().ok, 5_000);
    await closers.pop()?.();
    expectExactly(rulesOf("silver-writer"), rec.checks);
  });

  it("bronze-archiver: its group (with the committed cut) and every pipeline topic", async () => {
    const broker = await brokerWithTopics();
    const rec = new RecordingTransport(new MemoryTransport(broker));
    const admin = await rec.admin();
    let assigned = false;
    const archiver = new BronzeArchiver({
      transport: rec,
      admin: {
        ...admin,
        groupOffsets: async (g, t) => {
          assigned = true;
          return admin.groupOffsets(g, t);
        },
      },
      store: { location: "memory://", put: async () => undefined },
      prefix: "acltest/",
      // as processors/bronze-archiver/main.ts: the pipeline's topics without the extra ones
      topics: allTopics(p)
        .filter((t) => !t.key.startsWith("extra:"))
        .map((t) => t.name),
      groupId: "acltest.bronze-archiver",
      logger: silent("bronze-archiver"),
      metrics: new Registry(),
    });
    await archiver.start();
    closers.push(() => archiver.close());
    await until("the assignment", async () => assigned, 5_000);
    await closers.pop()?.();
    expectExactly(rulesOf("bronze-archiver"), rec.checks);
  });

  it("topics-apply: creates every topic, then grows them", async () => {
    const broker = new MemoryBroker({ logger: silent("memory") });
    const rec = new RecordingTransport(new MemoryTransport(broker));
    const admin = await rec.admin();
    const specs = (q: AuctionPipeline) =>
      allTopics(q).map((t) => ({ name: t.name, partitions: t.partitions, configs: t.config }));
    expect((await applyTopics(admin, specs(p))).create).toHaveLength(allTopics(p).length);
    expect((await applyTopics(admin, specs(testPipeline(2)))).grow).toHaveLength(allTopics(p).length);
    expectExactly(rulesOf("topics-apply"), rec.checks);
  });

  it("operator (provisioner gavel): creates, grows and corrects the configs of every topic", async () => {
    const broker = new MemoryBroker({ logger: silent("memory") });
    const rec = new RecordingTransport(new MemoryTransport(broker));
    const base = await rec.admin();
    const configs = new Map<string, Record<string, string>>();
    // operator/controller/kafka-admin.ts: DescribeConfigs and AlterConfigs on the topics
    const admin: TopicAdmin = {
      describeTopics: (n) => base.describeTopics(n),
      createTopics: async (specs) => {
        await base.createTopics(specs);
        for (const s of specs) configs.set(s.name, { ...s.configs });
      },
      createPartitions: (n, k) => base.createPartitions(n, k),
      brokerCount: () => base.brokerCount(),
      close: () => base.close(),
      describeTopicConfigs: async (names) => {
        for (const name of names) rec.add({ resourceType: "topic", name, operation: "describe-configs" });
        return new Map(names.map((n) => [n, configs.get(n) ?? {}]));
      },
      replaceTopicConfigs: async (name, c) => {
        rec.add({ resourceType: "topic", name, operation: "alter-configs" });
        configs.set(name, { ...c });
      },
    };
    const first = await provisionTopics(admin, allTopics(p));
    expect(first.report.created).toHaveLength(allTopics(p).length);
    // every topic grows; the non-compacted ones get a new retention
    const second = await provisionTopics(admin, allTopics(testPipeline(2, 86_400_000)));
    expect(second.report.grown).toHaveLength(allTopics(p).length);
    expect(second.report.configured.length).toBeGreaterThan(0);
    expectExactly(rulesOf("operator"), rec.checks);
  });

  it("ingest and generate: WRITE on the three source topics is all an idempotent producer needs", async () => {
    const broker = await brokerWithTopics();
    for (const role of ["ingest", "generate"] as const) {
      const rec = new RecordingTransport(new MemoryTransport(broker));
      const producer = await rec.producer();
      for (const t of [topics.auctions.name, topics.users.name, topics.bids.name])
        await producer.send([{ topic: t, messages: [{ key: "k", value: "{}" }] }]);
      await producer.close();
      expectExactly(rulesOf(role), rec.checks);
    }
  });
});

describe("gavel kafka acls", () => {
  function capture(program: Command): { err: string[] } {
    const err: string[] = [];
    const apply = (c: Command): void => {
      c.exitOverride();
      c.configureOutput({ writeOut: () => undefined, writeErr: (s) => err.push(s) });
      for (const sub of c.commands) apply(sub);
    };
    apply(program);
    return { err };
  }

  async function run(...args: string[]): Promise<string> {
    const out: string[] = [];
    const spy = vi.spyOn(process.stdout, "write").mockImplementation((s: string | Uint8Array) => {
      out.push(String(s));
      return true;
    });
    try {
      const program = buildProgram();
      capture(program);
      await program.parseAsync(["node", "gavel", "kafka", "acls", ...args]);
    } finally {
      spy.mockRestore();
    }
    return out.join("");
  }

  it("prints a table by default, one row per rule", async () => {
    const text = await run("-f", "examples/pipeline-full.yaml");
    const lines = text.trimEnd().split("\n");
    expect(lines[0]).toBe(
      "# Kafka ACLs of pipeline auctions-eu for User:auctions-eu (ingest, bid-processor, silver-writer, bronze-archiver): 22 rules, all allow, any host",
    );
    expect(lines[1]).toMatch(/^RESOURCE +NAME +PATTERN +OPERATION +WHY$/);
    expect(lines).toHaveLength(24);
    expect(lines).toContainEqual(
      expect.stringMatching(
        /^transactional-id +auctions-eu\.bid-processor- +prefixed +Write +bid-processor: /,
      ),
    );
  });

  it("--role and --principal, as JSON", async () => {
    const json = JSON.parse(
      await run(
        "-f",
        "examples/pipeline-minimal.yaml",
        "--role",
        "ingest,silver-writer",
        "--principal",
        "User:gavel",
        "--format",
        "json",
      ),
    ) as { principal: string; roles: string[]; rules: AclRule[] };
    expect(json.principal).toBe("User:gavel");
    expect(json.roles).toEqual(["ingest", "silver-writer"]);
    expect(json.rules.map(id)).toEqual(pipelineAcls(minimal, { roles: ["ingest", "silver-writer"] }).map(id));
  });

  it("kafka-acls commands against the pipeline's bootstrap servers", async () => {
    const text = await run("-f", "examples/pipeline-minimal.yaml", "--format", "kafka-acls");
    const commands = text.split("\n").filter((l) => l.startsWith("kafka-acls.sh"));
    expect(commands).toHaveLength(14);
    for (const c of commands)
      expect(c).toContain("--bootstrap-server my-cluster-kafka-bootstrap.kafka:9092 --add");
  });

  it("a Strimzi KafkaUser (YAML) named after the principal", async () => {
    const strimzi = (...args: string[]) =>
      run("-f", "examples/pipeline-full.yaml", "--format", "strimzi", ...args);
    const text = await strimzi("--authentication", "tls");
    const user = parseYaml(text) as ReturnType<typeof toStrimziKafkaUser>;
    expect(strimziProblems(user)).toEqual([]);
    expect(user.metadata.name).toBe("auctions-eu");
    expect(user.metadata.labels["strimzi.io/cluster"]).toBe("my-cluster");
    expect(user.spec.authentication.type).toBe("tls");
    await expect(strimzi("--principal", "User:other")).resolves.toContain("name: other");
    await expect(strimzi("--authentication", "tls", "--principal", "User:other")).rejects.toThrow(
      /use --principal User:CN=NAME/,
    );
  });

  it("a bad role or format prints the error and the usage", async () => {
    for (const [args, msg] of [
      [["--role", "ingest,bogus"], "unknown role bogus: choose from ingest, bid-processor"],
      [
        ["--format", "xml"],
        "argument 'xml' is invalid. Allowed choices are table, kafka-acls, strimzi, json.",
      ],
    ] as const) {
      const program = buildProgram();
      const { err } = capture(program);
      await expect(
        program.parseAsync(["node", "gavel", "kafka", "acls", "-f", "examples/pipeline-full.yaml", ...args]),
      ).rejects.toMatchObject({ exitCode: 1 });
      expect(err.join("")).toContain(msg);
      expect(err.join("")).toContain("Usage: gavel kafka acls [options]");
    }
  });
});

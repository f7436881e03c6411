/**
 * Least-privilege Kafka ACLs of a pipeline, derived from its spec: the
 * topics, consumer groups and transactional ids each Gavel process uses, and
 * nothing else (`gavel kafka acls -f pipeline.yaml`, docs/operations.md
 * "Kafka ACLs (least privilege)").
 *
 * Only operations Kafka does not imply are listed: an ALLOW of READ, WRITE or
 * ALTER also allows DESCRIBE of the same resource, and ALTER_CONFIGS allows
 * DESCRIBE_CONFIGS (StandardAuthorizerData, AclAuthorizer). So every rule is
 * needed: removing any one of them makes some request of the process fail.
 *
 * What each process sends, and the broker's check (KafkaApis):
 * - consumer group member: FindCoordinator (DESCRIBE group), Join/Sync/
 *   Heartbeat/LeaveGroup (READ group), Metadata, ListOffsets, OffsetFetch
 *   (DESCRIBE topic and group), Fetch (READ topic), OffsetCommit (READ group
 *   and topic): READ on the group and on every topic it reads.
 * - idempotent producer (kafkajs `idempotent: true`, librdkafka
 *   `enable.idempotence`): InitProducerId without a transactional id needs
 *   IDEMPOTENT_WRITE on the cluster OR, since Kafka 2.8 (KIP-679), WRITE on
 *   any topic, which every producing process has; Produce needs WRITE on the
 *   topic. kafkajs' transactional producer sends that InitProducerId too (at
 *   connect, `idempotent: true`).
 * - transactional producer: FindCoordinator (DESCRIBE), InitProducerId,
 *   AddPartitionsToTxn, Produce, EndTxn (WRITE on the transactional id;
 *   WRITE on the topics), AddOffsetsToTxn and TxnOffsetCommit (READ on the
 *   group; READ on the topics of the offsets).
 * - admin: describeTopics/topicOffsets/groupOffsets need DESCRIBE (topic,
 *   group); CreateTopics CREATE, CreatePartitions ALTER, DescribeConfigs
 *   DESCRIBE_CONFIGS, AlterConfigs ALTER_CONFIGS on the topic; the broker
 *   count (Metadata without topics) needs nothing.
 */
// Before kafkajs loads: two allocation fixes to its producer (lib/kafkajs-patches.ts).
import "../../lib/kafkajs-patches.ts";
import kafkajs, { type AclEntry } from "kafkajs";
import { type AuctionPipeline, allTopics, processors, topicNames } from "../../api/v1alpha1/pipeline.ts";
import { KAFKA_CLIENT_ROLES, type KafkaClientRole, type StrimziAuthentication } from "./roles.ts";

// kafkajs' enums are not named exports of its CommonJS module under Node's
// ESM loader (its `module.exports` spreads the errors); the default export has them.
const { AclOperationTypes, AclPermissionTypes, AclResourceTypes, ResourcePatternTypes } = kafkajs;

export { KAFKA_CLIENT_ROLES, type KafkaClientRole, type StrimziAuthentication } from "./roles.ts";

const ACL_RESOURCE_TYPES = ["topic", "group", "transactional-id", "cluster"] as const;
export type AclResourceType = (typeof ACL_RESOURCE_TYPES)[number];
export type AclPatternType = "literal" | "prefixed";
const ACL_OPERATIONS = [
  "read",
  "write",
  "create",
  "alter",
  "describe",
  "describe-configs",
  "alter-configs",
  "idempotent-write",
] as const;
export type AclOperation = (typeof ACL_OPERATIONS)[number];

/** Kafka's name of the one cluster resource. */
const CLUSTER_RESOURCE_NAME = "kafka-cluster";

/** One ACL: allow `principal` `operation` on the resource, from any host. */
export interface AclRule {
  readonly resourceType: AclResourceType;
  /** Resource name, or its prefix with `patternType: prefixed`; `kafka-cluster` for the cluster. */
  readonly name: string;
  readonly patternType: AclPatternType;
  readonly operation: AclOperation;
  /** `User:<name>` (SASL user name; `User:CN=...` for a TLS client certificate). */
  readonly principal: string;
  readonly host: "*";
  readonly permission: "allow";
  /** Why each role needs it, `role: reason; role: reason`. */
  readonly why: string;
  /** The processes that need it, in KAFKA_CLIENT_ROLES order. */
  readonly roles: readonly KafkaClientRole[];
}

export interface PipelineAclOptions {
  /** Default `User:<pipeline name>`. */
  readonly principal?: string;
  /** Default: the processes that use the pipeline's Kafka credentials (`defaultAclRoles`). */
  readonly roles?: readonly KafkaClientRole[];
  /**
   * Also grant IDEMPOTENT_WRITE on the cluster to the idempotent producers:
   * only brokers older than Kafka 2.8 (before KIP-679) need it; newer ones
   * accept WRITE on any topic instead.
   */
  readonly clusterIdempotentWrite?: boolean;
}

/**
 * The processes that connect with the pipeline's credentials
 * (`spec.kafka.authSecretRef` is given to every processor, and read by the
 * operator when it provisions the topics): the processors that run
 * (`spec.processors`, all four when omitted), plus `operator` with
 * `provisioner: gavel`. The tools (`topics-apply`, `generate`) only when asked.
 */
export function defaultAclRoles(pipeline: AuctionPipeline): KafkaClientRole[] {
  const roles: KafkaClientRole[] = processors(pipeline).map((p) => p.name);
  if (pipeline.spec.kafka.topics.provisioner === "gavel") roles.push("operator");
  return roles;
}

/** Group ids and transactional ids, as the processes build them. */
function kafkaIds(pipeline: AuctionPipeline) {
  const name = pipeline.metadata.name;
  const bidProcessor = `${name}.bid-processor`;
  return {
    /** processors/bid-processor/processor.ts: `groupId`. */
    bidProcessorGroup: bidProcessor,
    /** processors/kafka/read.ts `readToEnd`: `<group>-read-<uuid>`, a throw-away group per read. */
    bidProcessorReadGroupPrefix: `${bidProcessor}-read-`,
    /** processors/kafka/read.ts `tailTopic`: `<group>-tail-<uuid>`, one per replica (the users view). */
    bidProcessorTailGroupPrefix: `${bidProcessor}-tail-`,
    /** processors/bid-processor/processor.ts `#restore`: `<group>-<partition>`, one per owned partition. */
    bidProcessorTransactionalIdPrefix: `${bidProcessor}-`,
    /** processors/silver-writer/writer.ts: `groupId`. */
    silverWriterGroup: `${name}.silver-writer`,
    /** processors/bronze-archiver/main.ts: `groupId`. */
    bronzeArchiverGroup: `${name}.bronze-archiver`,
  };
}

interface Need {
  readonly resourceType: AclResourceType;
  readonly name: string;
  readonly patternType: AclPatternType;
  readonly operation: AclOperation;
  readonly why: string;
}

const topic = (name: string, operation: AclOperation, why: string): Need => ({
  resourceType: "topic",
  name,
  patternType: "literal",
  operation,
  why,
});

/** What one process needs, with the reason (see the file comment for the broker's checks). */
function needsOf(role: KafkaClientRole, pipeline: AuctionPipeline, o: PipelineAclOptions): Need[] {
  const t = topicNames(pipeline);
  const ids = kafkaIds(pipeline);
  const idempotent = (who: string): Need[] =>
    o.clusterIdempotentWrite
      ? [
          {
            resourceType: "cluster",
            name: CLUSTER_RESOURCE_NAME,
            patternType: "literal",
            operation: "idempotent-write",
            why: `${who} needs it on a broker older than Kafka 2.8 (newer ones accept WRITE on any topic instead, KIP-679)`,
          },
        ]
      : [];
  switch (role) {
    case "ingest":
      return [
        topic(
          t.bids.name,
          "write",
          "produces POST /v1/bids and /v1/bids:batch (idempotent producer, acks=all)",
        ),
        topic(t.auctions.name, "write", "produces POST /v1/auctions"),
        topic(t.users.name, "write", "produces POST /v1/users"),
        ...idempotent("the InitProducerId of its idempotent producer"),
      ];
    case "generate":
      return [
        topic(t.auctions.name, "write", "produces the generated auctions"),
        topic(t.users.name, "write", "produces the generated users"),
        topic(t.bids.name, "write", "produces the generated bids (idempotent producer)"),
        ...idempotent("the InitProducerId of its idempotent producer"),
      ];
    case "bid-processor":
      return [
        topic(
          t.bids.name,
          "read",
          `consumes it in group ${ids.bidProcessorGroup}; commits its offsets in transactions (TxnOffsetCommit); reads its log end and committed offsets`,
        ),
        topic(
          t.auctions.name,
          "read",
          `consumes it in group ${ids.bidProcessorGroup}; commits its offsets in transactions (TxnOffsetCommit); reads its log end and committed offsets`,
        ),
        topic(t.users.name, "read", "reads it to its end at start, then tails it (every replica)"),
        topic(t["bids.accepted"].name, "write", "writes accepted bids (transactional)"),
        topic(t["bids.accepted"].name, "read", "replays its decisions when it rebuilds a partition"),
        topic(t["bids.rejected"].name, "write", "writes rejected bids, the dead letters (transactional)"),
        topic(t["bids.rejected"].name, "read", "replays its decisions when it rebuilds a partition"),
        topic(t.prices.name, "write", "writes price updates with the auction snapshot (transactional)"),
        topic(t.prices.name, "read", "rebuilds a partition's auctions from the compacted snapshots"),
        topic(t["fraud-alerts"].name, "write", "writes fraud alerts (transactional); checks its partitions"),
        topic(t.transactions.name, "write", "writes auction-close transactions (transactional)"),
        topic(t.transactions.name, "read", "replays closed auctions when it rebuilds a partition"),
        {
          resourceType: "group",
          name: ids.bidProcessorGroup,
          patternType: "literal",
          operation: "read",
          why: "its consumer group; the input offsets are committed in its transactions (AddOffsetsToTxn, TxnOffsetCommit); reads the committed offsets and their metadata when it rebuilds",
        },
        {
          resourceType: "group",
          name: ids.bidProcessorReadGroupPrefix,
          patternType: "prefixed",
          operation: "read",
          why: "throw-away groups (`-read-<uuid>`) of the reads to the end of users, prices and its outputs; they commit nothing",
        },
        {
          resourceType: "group",
          name: ids.bidProcessorTailGroupPrefix,
          patternType: "prefixed",
          operation: "read",
          why: "the group (`-tail-<uuid>`) of each replica's users tail; it commits nothing",
        },
        {
          resourceType: "transactional-id",
          name: ids.bidProcessorTransactionalIdPrefix,
          patternType: "prefixed",
          operation: "write",
          why: "one transactional producer per owned partition (`<group>-<partition>`), created before a rebuild to fence the previous owner",
        },
        ...idempotent(
          "the InitProducerId without transactional id that kafkajs sends when a transactional producer connects",
        ),
      ];
    case "silver-writer":
      return [
        ...(
          [
            t.auctions.name,
            t.users.name,
            t["bids.accepted"].name,
            t["bids.rejected"].name,
            t.prices.name,
            t["fraud-alerts"].name,
            t.transactions.name,
          ] as const
        ).map((n) =>
          topic(
            n,
            "read",
            `consumes it in group ${ids.silverWriterGroup}; commits after the database commit`,
          ),
        ),
        {
          resourceType: "group",
          name: ids.silverWriterGroup,
          patternType: "literal",
          operation: "read",
          why: "its consumer group (join, offset fetch and commit)",
        },
      ];
    case "bronze-archiver":
      return [
        ...allTopics(pipeline)
          .filter((x) => !x.key.startsWith("extra:"))
          .map((x) =>
            topic(
              x.name,
              "read",
              `archives it in group ${ids.bronzeArchiverGroup}; commits the cut and the offsets with metadata`,
            ),
          ),
        {
          resourceType: "group",
          name: ids.bronzeArchiverGroup,
          patternType: "literal",
          operation: "read",
          why: "its consumer group; reads the committed cut metadata on assignment",
        },
      ];
    case "topics-apply":
      return allTopics(pipeline).flatMap((x) => [
        topic(x.name, "create", "creates it when missing (CreateTopics, with its configs)"),
        topic(x.name, "alter", "grows its partitions (CreatePartitions); describes it"),
      ]);
    case "operator":
      return allTopics(pipeline).flatMap((x) => [
        topic(
          x.name,
          "create",
          "provisioner gavel: creates it when missing (CreateTopics, with its configs)",
        ),
        topic(x.name, "alter", "provisioner gavel: grows its partitions (CreatePartitions); describes it"),
        topic(
          x.name,
          "alter-configs",
          "provisioner gavel: reads its configs and corrects drift (DescribeConfigs, AlterConfigs)",
        ),
      ]);
  }
}

const TYPE_RANK: Record<AclResourceType, number> = { topic: 0, group: 1, "transactional-id": 2, cluster: 3 };
const OP_RANK = Object.fromEntries(ACL_OPERATIONS.map((op, i) => [op, i])) as Record<AclOperation, number>;
const ROLE_RANK = Object.fromEntries(KAFKA_CLIENT_ROLES.map((r, i) => [r, i])) as Record<
  KafkaClientRole,
  number
>;

/** A principal as Kafka writes it: `Type:name`, e.g. `User:auctions-eu`. */
function checkPrincipal(principal: string): string {
  if (!/^[A-Za-z][A-Za-z0-9]*:\S.*$/.test(principal))
    throw new Error(
      `principal must be 'Type:name' as Kafka writes it, e.g. 'User:alice' (SASL) or 'User:CN=alice' (TLS client certificate), got '${principal}'`,
    );
  return principal;
}

/**
 * The ACLs the chosen processes of a pipeline need, one per (resource,
 * pattern, operation), merged across roles, sorted by resource type, name
 * and operation.
 */
export function pipelineAcls(pipeline: AuctionPipeline, opts: PipelineAclOptions = {}): AclRule[] {
  const principal = checkPrincipal(opts.principal ?? `User:${pipeline.metadata.name}`);
  const roles = [...new Set(opts.roles ?? defaultAclRoles(pipeline))].sort(
    (a, b) => ROLE_RANK[a] - ROLE_RANK[b],
  );
  const byKey = new Map<string, { need: Need; roles: KafkaClientRole[]; why: string[] }>();
  for (const role of roles) {
    for (const need of needsOf(role, pipeline, opts)) {
      const key = JSON.stringify([need.resourceType, need.patternType, need.name, need.operation]);
      const cur = byKey.get(key) ?? { need, roles: [], why: [] };
      if (!cur.roles.includes(role)) {
        cur.roles.push(role);
        cur.why.push(`${role}: ${need.why}`);
      }
      byKey.set(key, cur);
    }
  }
  return [...byKey.values()]
    .map(
      ({ need, roles: rs, why }): AclRule => ({
        resourceType: need.resourceType,
        name: need.name,
        patternType: need.patternType,
        operation: need.operation,
        principal,
        host: "*",
        permission: "allow",
        why: why.join("; "),
        roles: rs,
      }),
    )
    .sort(
      (a, b) =>
        TYPE_RANK[a.resourceType] - TYPE_RANK[b.resourceType] ||
        (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) ||
        (a.patternType < b.patternType ? -1 : a.patternType > b.patternType ? 1 : 0) ||
        OP_RANK[a.operation] - OP_RANK[b.operation],
    );
}

// ---------------------------------------------------------------------------
// What a set of rules allows (Kafka's authorizer, for tests and checks)
// ---------------------------------------------------------------------------

/** One authorization check the broker makes. */
export interface AclCheck {
  readonly resourceType: AclResourceType;
  readonly name: string;
  readonly operation: AclOperation;
}

const IMPLIES: Partial<Record<AclOperation, readonly AclOperation[]>> = {
  describe: ["describe", "read", "write", "alter"],
  "describe-configs": ["describe-configs", "alter-configs"],
};

/**
 * Whether ALLOW rules grant the check the way Kafka's authorizer does: a
 * literal rule matches the exact name, a prefixed one every name starting
 * with it; DESCRIBE is implied by READ, WRITE and ALTER (and DELETE),
 * DESCRIBE_CONFIGS by ALTER_CONFIGS. (No DENY rules, no `*` wildcards: the
 * generator makes neither.)
 */
export function aclsAllow(rules: readonly AclRule[], check: AclCheck, principal?: string): boolean {
  const ops = IMPLIES[check.operation] ?? [check.operation];
  return rules.some(
    (r) =>
      (principal === undefined || r.principal === principal) &&
      r.permission === "allow" &&
      r.resourceType === check.resourceType &&
      ops.includes(r.operation) &&
      (r.patternType === "literal" ? r.name === check.name : check.name.startsWith(r.name)),
  );
}

// ---------------------------------------------------------------------------
// Output formats
// ---------------------------------------------------------------------------

const KAFKAJS_RESOURCE: Record<AclResourceType, AclEntry["resourceType"]> = {
  topic: AclResourceTypes.TOPIC,
  group: AclResourceTypes.GROUP,
  "transactional-id": AclResourceTypes.TRANSACTIONAL_ID,
  cluster: AclResourceTypes.CLUSTER,
};
const KAFKAJS_OPERATION: Record<AclOperation, AclEntry["operation"]> = {
  read: AclOperationTypes.READ,
  write: AclOperationTypes.WRITE,
  create: AclOperationTypes.CREATE,
  alter: AclOperationTypes.ALTER,
  describe: AclOperationTypes.DESCRIBE,
  "describe-configs": AclOperationTypes.DESCRIBE_CONFIGS,
  "alter-configs": AclOperationTypes.ALTER_CONFIGS,
  "idempotent-write": AclOperationTypes.IDEMPOTENT_WRITE,
};

/** The `acl` array of kafkajs `admin.createAcls({ acl })` (and, as filters, `deleteAcls`). */
export function toKafkajsAcls(rules: readonly AclRule[]): AclEntry[] {
  return rules.map((r) => ({
    resourceType: KAFKAJS_RESOURCE[r.resourceType],
    resourceName: r.name,
    resourcePatternType:
      r.patternType === "literal" ? ResourcePatternTypes.LITERAL : ResourcePatternTypes.PREFIXED,
    principal: r.principal,
    host: r.host,
    operation: KAFKAJS_OPERATION[r.operation],
    permissionType: AclPermissionTypes.ALLOW,
  }));
}

/** Kafka's own spelling of an operation: `DescribeConfigs`, `IdempotentWrite`. */
export function kafkaOperationName(op: AclOperation): string {
  return op
    .split("-")
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join("");
}

/** Rules of one resource (type, pattern, name), in rule order. */
export interface AclResourceGroup {
  readonly resourceType: AclResourceType;
  readonly name: string;
  readonly patternType: AclPatternType;
  readonly rules: readonly AclRule[];
}

function groupByResource(rules: readonly AclRule[]): AclResourceGroup[] {
  const out = new Map<
    string,
    { resourceType: AclResourceType; name: string; patternType: AclPatternType; rules: AclRule[] }
  >();
  for (const r of rules) {
    const key = JSON.stringify([r.principal, r.resourceType, r.patternType, r.name]);
    const g = out.get(key) ?? {
      resourceType: r.resourceType,
      name: r.name,
      patternType: r.patternType,
      rules: [],
    };
    g.rules.push(r);
    out.set(key, g);
  }
  return [...out.values()];
}

/** Single-quoted for sh when it holds anything but safe characters. */
function shellQuote(s: string): string {
  return /^[A-Za-z0-9_.,:=/@+-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

/**
 * `kafka-acls.sh --add` commands, one per resource (its operations as
 * repeated `--operation`), each after a `#` line with the reasons: a shell
 * script. `commandConfig` is the admin client's properties file
 * (`--command-config`, for a secured listener).
 */
export function toKafkaAclsCommands(
  rules: readonly AclRule[],
  bootstrap: string,
  opts: { readonly commandConfig?: string } = {},
): string[] {
  const lines: string[] = [];
  for (const g of groupByResource(rules)) {
    const first = g.rules[0];
    if (!first) continue;
    const resource =
      g.resourceType === "cluster"
        ? ["--cluster"]
        : [`--${g.resourceType}`, shellQuote(g.name), "--resource-pattern-type", g.patternType];
    for (const r of g.rules) lines.push(`# ${kafkaOperationName(r.operation)}: ${r.why}`);
    lines.push(
      [
        "kafka-acls.sh",
        "--bootstrap-server",
        shellQuote(bootstrap),
        ...(opts.commandConfig ? ["--command-config", shellQuote(opts.commandConfig)] : []),
        "--add",
        "--allow-principal",
        shellQuote(first.principal),
        "--allow-host",
        shellQuote(first.host),
        ...g.rules.flatMap((r) => ["--operation", kafkaOperationName(r.operation)]),
        ...resource,
      ].join(" "),
    );
  }
  return lines;
}

/** A Strimzi KafkaUser with `authorization.type: simple` (the same ACL schema in v1 and v1beta2). */
export interface StrimziKafkaUser {
  readonly apiVersion: "kafka.strimzi.io/v1" | "kafka.strimzi.io/v1beta2";
  readonly kind: "KafkaUser";
  readonly metadata: {
    readonly name: string;
    readonly namespace?: string;
    readonly labels: Readonly<Record<string, string>>;
  };
  readonly spec: {
    readonly authentication: { readonly type: StrimziAuthentication };
    readonly authorization: {
      readonly type: "simple";
      readonly acls: readonly StrimziAcl[];
    };
  };
}

export interface StrimziAcl {
  readonly type: "allow";
  readonly resource:
    | {
        readonly type: "topic" | "group" | "transactionalId";
        readonly name: string;
        readonly patternType: "literal" | "prefix";
      }
    | { readonly type: "cluster" };
  readonly operations: readonly string[];
  readonly host: "*";
}

const STRIMZI_RESOURCE: Record<Exclude<AclResourceType, "cluster">, "topic" | "group" | "transactionalId"> = {
  topic: "topic",
  group: "group",
  "transactional-id": "transactionalId",
};

/**
 * The principal of a Strimzi KafkaUser named `name`: `User:<name>` with
 * SCRAM, `User:CN=<name>` with a TLS client certificate.
 */
export function strimziPrincipal(name: string, authentication: StrimziAuthentication): string {
  return authentication === "tls" ? `User:CN=${name}` : `User:${name}`;
}

/**
 * A KafkaUser for Strimzi's User Operator holding the rules (one ACL entry
 * per resource with its operations). The user's principal comes from its
 * name (`strimziPrincipal`), not from the rules. `cluster` is the Strimzi
 * Kafka name (the `strimzi.io/cluster` label the User Operator selects by).
 */
export function toStrimziKafkaUser(
  rules: readonly AclRule[],
  opts: {
    readonly name: string;
    readonly namespace?: string;
    readonly cluster?: string;
    readonly authentication: StrimziAuthentication;
    readonly pipeline?: string;
    readonly apiVersion?: StrimziKafkaUser["apiVersion"];
  },
): StrimziKafkaUser {
  if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(opts.name) || opts.name.length > 253)
    throw new Error(
      `a KafkaUser name must be a lowercase DNS subdomain (letters, digits, '-', '.'), got '${opts.name}'`,
    );
  const acls = groupByResource(rules).map(
    (g): StrimziAcl => ({
      type: "allow",
      resource:
        g.resourceType === "cluster"
          ? { type: "cluster" }
          : {
              type: STRIMZI_RESOURCE[g.resourceType],
              name: g.name,
              patternType: g.patternType === "literal" ? "literal" : "prefix",
            },
      operations: g.rules.map((r) => kafkaOperationName(r.operation)),
      host: "*",
    }),
  );
  return {
    apiVersion: opts.apiVersion ?? "kafka.strimzi.io/v1",
    kind: "KafkaUser",
    metadata: {
      name: opts.name,
      ...(opts.namespace ? { namespace: opts.namespace } : {}),
      labels: {
        ...(opts.cluster ? { "strimzi.io/cluster": opts.cluster } : {}),
        ...(opts.pipeline ? { "gavel.dev/pipeline": opts.pipeline } : {}),
      },
    },
    spec: {
      authentication: { type: opts.authentication },
      authorization: { type: "simple", acls },
    },
  };
}

/** One line per rule: resource, name, pattern, operation, why (columns padded). */
export function toAclTable(rules: readonly AclRule[]): string[] {
  const rows = [
    ["RESOURCE", "NAME", "PATTERN", "OPERATION", "WHY"],
    ...rules.map((r) => [r.resourceType, r.name, r.patternType, kafkaOperationName(r.operation), r.why]),
  ];
  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((row) => (row[i] ?? "").length)));
  return rows.map((row) =>
    row
      .map((cell, i) => (i < widths.length ? cell.padEnd(widths[i] ?? 0) : cell))
      .join("  ")
      .trimEnd(),
  );
}

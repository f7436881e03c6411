/**
 * `spec.kafka.topics.provisioner: gavel`: the operator creates and grows the
 * pipeline's topics itself through the Kafka admin API, in the shape of
 * controller-runtime's reconcile: a pure plan from the wanted topics and what
 * Kafka has (`planProvisioning`, reusing `planTopics` of `gavel topics apply`),
 * then `provisionTopics` carries it out and returns each topic's state for
 * status. Topics are never shrunk or deleted: a partition decrease is refused
 * with `NotSupported`, like Strimzi's topic operator.
 */

import type { ResolvedTopic } from "../../api/v1alpha1/pipeline.ts";
import { type KafkaSecurity, readKafkaSecurity } from "../../lib/config.ts";
import { planTopics } from "../../processors/kafka/topics.ts";
import type { Admin, TopicDescription, TopicSpec } from "../../processors/kafka/transport.ts";

/**
 * What the provisioner needs of Kafka: the processors' `Admin` (describe,
 * create, grow) plus topic configs, which `gavel topics apply` only sets at
 * creation.
 */
export interface TopicAdmin
  extends Pick<Admin, "describeTopics" | "createTopics" | "createPartitions" | "brokerCount" | "close"> {
  /** The configs set on each topic itself (not broker defaults), by topic name; missing topics are absent. */
  describeTopicConfigs(names: readonly string[]): Promise<Map<string, Record<string, string>>>;
  /**
   * Sets a topic's own configs to exactly `configs`. Kafka's AlterConfigs
   * replaces the whole set, so callers pass the current configs merged with
   * the changes (`planProvisioning` does).
   */
  replaceTopicConfigs(name: string, configs: Readonly<Record<string, string>>): Promise<void>;
}

/** Where and how the operator connects: the settings the processors get. */
export interface KafkaConnection {
  readonly brokers: string;
  readonly security?: KafkaSecurity;
}

export type TopicAdminFactory = (conn: KafkaConnection) => Promise<TopicAdmin>;

/** One topic as the operator last saw it in Kafka, for `status.topics`. */
export interface TopicObservation {
  readonly ready: "True" | "False" | "Unknown";
  /** Partitions in Kafka after this pass (undefined when unknown). */
  readonly partitions?: number;
  readonly reason?: string;
  readonly message?: string;
}

/** The outcome of one provisioning pass: per topic, or one error for all (Kafka unreachable, Secret missing). */
export type ProvisionedTopics =
  | { readonly topics: ReadonlyMap<string, TopicObservation> }
  | { readonly error: { readonly reason: string; readonly message: string } };

export interface ExistingTopic {
  readonly partitions: number;
  /** The topic's own configs (not broker defaults). */
  readonly configs: Readonly<Record<string, string>>;
}

export interface ProvisionPlan {
  readonly create: readonly TopicSpec[];
  readonly grow: readonly { readonly name: string; readonly from: number; readonly to: number }[];
  /** Existing topics whose owned configs differ: `configs` is the full set to write, `changed` the keys that differ. */
  readonly configure: readonly {
    readonly name: string;
    readonly configs: Readonly<Record<string, string>>;
    readonly changed: readonly string[];
  }[];
  /** Each wanted topic's state once the plan is carried out. */
  readonly topics: ReadonlyMap<string, TopicObservation>;
}

export const NOT_SUPPORTED = "NotSupported";

/** The message of a refused partition decrease: what is wrong and the two ways out. */
function decreaseMessage(topic: string, have: number, want: number): string {
  return `Decreasing partitions is not supported: topic ${topic} has ${have} partitions in Kafka, the spec asks for ${want}. Kafka cannot remove partitions (and records keyed by auction_id would move): set this topic's partitions to ${have} or more in spec.topics, or delete the topic in Kafka to have it recreated with ${want} (its records are lost)`;
}

/**
 * Pure diff between the wanted topics and what Kafka has. Creation and growth
 * come from `planTopics` (replication factor clamped to the broker count,
 * partitions only grow). Configs: every key the pipeline names
 * (`cleanup.policy`, `retention.ms`, `spec.topics.config`, per-topic
 * `config`) is set; keys set on the topic by others are kept, keys the
 * pipeline no longer names are left as they are.
 */
export function planProvisioning(
  wanted: readonly ResolvedTopic[],
  existing: ReadonlyMap<string, ExistingTopic>,
  brokers: number,
): ProvisionPlan {
  const specs: TopicSpec[] = wanted.map((t) => ({
    name: t.name,
    partitions: t.partitions,
    replicationFactor: t.replicas,
    configs: t.config,
  }));
  const described = new Map<string, TopicDescription>(
    [...existing].map(([name, e]) => [name, { name, partitions: e.partitions }]),
  );
  const base = planTopics(specs, described, brokers);
  const tooLarge = new Map(base.tooLarge.map((t) => [t.name, t]));
  const grow = new Map(base.grow.map((g) => [g.name, g]));
  const configure: { name: string; configs: Record<string, string>; changed: string[] }[] = [];
  const topics = new Map<string, TopicObservation>();
  for (const t of wanted) {
    const have = existing.get(t.name);
    if (have === undefined) {
      topics.set(t.name, { ready: "True", partitions: t.partitions });
      continue;
    }
    const changed = Object.keys(t.config)
      .filter((k) => have.configs[k] !== t.config[k])
      .sort();
    if (changed.length > 0)
      configure.push({ name: t.name, configs: { ...have.configs, ...t.config }, changed });
    const big = tooLarge.get(t.name);
    topics.set(
      t.name,
      big
        ? {
            ready: "False",
            partitions: big.have,
            reason: NOT_SUPPORTED,
            message: decreaseMessage(t.name, big.have, big.want),
          }
        : { ready: "True", partitions: grow.get(t.name)?.to ?? have.partitions },
    );
  }
  return { create: base.create, grow: base.grow, configure, topics };
}

/** What one pass changed, for events and logs. */
export interface ProvisionReport {
  readonly created: readonly string[];
  readonly grown: readonly string[];
  readonly configured: readonly string[];
  readonly refused: readonly string[];
  readonly failed: readonly string[];
}

function kafkaReason(err: unknown): string {
  const type = (err as { type?: unknown }).type;
  if (typeof type !== "string" || type === "") return "KafkaError";
  // kafkajs error types are UPPER_SNAKE (POLICY_VIOLATION): conditions want CamelCase.
  return type
    .toLowerCase()
    .split("_")
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join("");
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Creates missing topics, grows partitions and sets owned configs; never
 * shrinks or deletes. A failing action marks its topic not ready and the
 * others still proceed; an error reading the cluster throws.
 */
export async function provisionTopics(
  admin: TopicAdmin,
  wanted: readonly ResolvedTopic[],
): Promise<{ topics: Map<string, TopicObservation>; report: ProvisionReport }> {
  const names = wanted.map((t) => t.name);
  const described = await admin.describeTopics(names);
  const configs = await admin.describeTopicConfigs([...described.keys()]);
  const existing = new Map<string, ExistingTopic>(
    [...described].map(([name, d]) => [name, { partitions: d.partitions, configs: configs.get(name) ?? {} }]),
  );
  const plan = planProvisioning(wanted, existing, await admin.brokerCount());
  const topics = new Map(plan.topics);
  const failed: string[] = [];
  const fail = (name: string, what: string, err: unknown) => {
    failed.push(name);
    topics.set(name, {
      ready: "False",
      ...(existing.has(name) ? { partitions: existing.get(name)!.partitions } : {}),
      reason: kafkaReason(err),
      message: `${what} failed: ${errorMessage(err)}`,
    });
  };
  const created: string[] = [];
  if (plan.create.length > 0) {
    try {
      await admin.createTopics(plan.create);
      created.push(...plan.create.map((t) => t.name));
    } catch (err) {
      for (const t of plan.create) fail(t.name, `creating topic ${t.name}`, err);
    }
  }
  const grown: string[] = [];
  for (const g of plan.grow) {
    try {
      await admin.createPartitions(g.name, g.to);
      grown.push(`${g.name} (${g.from} -> ${g.to} partitions)`);
    } catch (err) {
      fail(g.name, `growing topic ${g.name} to ${g.to} partitions`, err);
    }
  }
  const configured: string[] = [];
  for (const c of plan.configure) {
    try {
      await admin.replaceTopicConfigs(c.name, c.configs);
      configured.push(`${c.name} (${c.changed.join(", ")})`);
    } catch (err) {
      fail(c.name, `setting ${c.changed.join(", ")} on topic ${c.name}`, err);
    }
  }
  const refused = [...plan.topics].filter(([, o]) => o.reason === NOT_SUPPORTED).map(([n]) => n);
  return { topics, report: { created, grown, configured, refused, failed } };
}

/**
 * The client security settings from the Secret named by
 * `spec.kafka.authSecretRef` (its `data`, base64 as the API returns it),
 * read with the same code and names as the processors' environment.
 */
export function kafkaSecurityFromSecret(
  data: Readonly<Record<string, string>> | undefined,
): KafkaSecurity | undefined {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(data ?? {})) env[k] = Buffer.from(v, "base64").toString("utf8");
  return readKafkaSecurity(env);
}

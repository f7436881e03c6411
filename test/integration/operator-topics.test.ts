/**
 * `spec.kafka.topics.provisioner: gavel` against the real kube-apiserver and
 * the real Kafka of the test environment: the reconciler creates the topics
 * with the spec's partitions and configs, grows them when the spec grows,
 * refuses a decrease with NotSupported (Kafka untouched), reads the Kafka auth
 * Secret by reference, and reports it all in status.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { type ConfigResourceTypes, Kafka, logLevel } from "kafkajs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parsePipeline } from "../../api/v1alpha1/pipeline.ts";
import { pipelineAcls, toKafkajsAcls } from "../../processors/kafka/acls.ts";
import { kafkaScramUser } from "../env/services.ts";
import { envFile, paths, readEnvFile, readState } from "../env/testenv.ts";
import {
  condition,
  core,
  createNamespace,
  createPipeline,
  eventsFor,
  gavelProvisioned,
  kubectlPatchSpec,
  list,
  markDeploymentsAvailable,
  type Obj,
  operatorTests,
  patchSpec,
  pipeline,
  pipelineWhen,
  suffix,
  topicsReady,
  waitFor,
} from "./operator-support.ts";

const brokers = () => {
  const b = process.env.KAFKA_BOOTSTRAP_SERVERS;
  if (!b) throw new Error("KAFKA_BOOTSTRAP_SERVERS is not set: run 'gavel testenv up'");
  return b;
};

const { operator } = operatorTests();
const kafka = new Kafka({ clientId: "gavel-tests", brokers: [brokers()], logLevel: logLevel.NOTHING });
const admin = kafka.admin();
const created: string[] = [];

beforeAll(async () => {
  await admin.connect();
});
afterAll(async () => {
  // The provisioner never deletes topics; the test cleans up its own.
  const have = new Set(await admin.listTopics());
  const mine = created.filter((t) => have.has(t));
  if (mine.length > 0) await admin.deleteTopics({ topics: mine }).catch(() => undefined);
  await admin.disconnect();
});

async function partitions(topic: string): Promise<number | undefined> {
  if (!(await admin.listTopics()).includes(topic)) return undefined;
  const md = await admin.fetchTopicMetadata({ topics: [topic] });
  return md.topics[0]?.partitions.length;
}

async function topicConfig(topic: string): Promise<Record<string, string>> {
  const r = await admin.describeConfigs({
    includeSynonyms: false,
    resources: [{ type: 2 as ConfigResourceTypes.TOPIC, name: topic }],
  });
  return Object.fromEntries(r.resources[0]!.configEntries.map((e) => [e.configName, e.configValue]));
}

const SUFFIXES = [
  "auctions",
  "users",
  "bids",
  "bids.accepted",
  "bids.rejected",
  "prices",
  "fraud-alerts",
  "transactions",
];

function gavelPipeline(name: string, spec: Record<string, unknown> = {}): Record<string, unknown> {
  return gavelProvisioned(name, brokers(), spec);
}

describe("operator: topics through the Kafka admin API (provisioner gavel)", () => {
  it("creates, grows and configures the topics, refuses a decrease with NotSupported, reports status", async () => {
    const ns = await createNamespace("op-topics");
    const name = `gt-${suffix()}`;
    created.push(...SUFFIXES.map((s) => `${name}.${s}`), `${name}.legacy`);
    operator(ns);

    // The auth Secret does not exist yet: TopicsReady says so and nothing is created.
    await createPipeline(ns, gavelPipeline(name, { topics: { partitions: 2, replicas: 1 } }));
    let p = await pipelineWhen(
      ns,
      name,
      "KafkaAuthSecretNotFound",
      (x) => condition(x, "TopicsReady")?.reason === "KafkaAuthSecretNotFound",
    );
    expect(condition(p, "TopicsReady").message).toContain("Secret kafka-auth (spec.kafka.authSecretRef)");
    expect(await partitions(`${name}.bids`)).toBeUndefined();

    // A plaintext listener: the Secret only says so (processors get it as envFrom too).
    await core.createNamespacedSecret({
      namespace: ns,
      body: { metadata: { name: "kafka-auth" }, stringData: { KAFKA_TLS: "false" } },
    });
    p = await topicsReady(ns, name, "TopicsReady", 60_000);
    expect(p.status.topicsReady).toBe("8/8");
    expect(p.status.topics.find((t: Obj) => t.name === `${name}.bids`)).toEqual({
      name: `${name}.bids`,
      ready: "True",
      partitions: 2,
    });
    for (const s of SUFFIXES) expect(await partitions(`${name}.${s}`), s).toBe(2);
    expect(await topicConfig(`${name}.bids`)).toMatchObject({
      "cleanup.policy": "delete",
      "retention.ms": "604800000",
    });
    expect((await topicConfig(`${name}.prices`))["cleanup.policy"]).toBe("compact");
    expect(await list("kafka.strimzi.io/v1", "KafkaTopic", ns)).toEqual([]);
    expect((await eventsFor(ns, name)).some((e: Obj) => e.reason === "TopicsProvisioned")).toBe(true);

    await markDeploymentsAvailable(ns);
    await pipelineWhen(ns, name, "Ready", (x) => condition(x, "Ready")?.status === "True");

    // Grow partitions and change retention: Kafka follows.
    await patchSpec(ns, name, {
      topics: { partitions: 4, retentionMs: 3_600_000, config: { "max.message.bytes": "2097152" } },
    });
    await waitFor(
      "grown to 4 partitions",
      async () => (await partitions(`${name}.transactions`)) === 4,
      60_000,
    );
    await waitFor(
      "retention.ms",
      async () => (await topicConfig(`${name}.bids`))["retention.ms"] === "3600000",
      60_000,
    );
    expect((await topicConfig(`${name}.users`))["max.message.bytes"]).toBe("2097152");
    p = await pipelineWhen(
      ns,
      name,
      "status partitions 4",
      (x) =>
        x.status?.observedGeneration === x.metadata.generation &&
        x.status.topics.every((t: Obj) => t.partitions === 4),
    );
    expect(condition(p, "TopicsReady").status).toBe("True");

    // The spec cannot shrink (CEL); a topic that already has more partitions is refused, not shrunk.
    const rejected = await kubectlPatchSpec(ns, name, { topics: { partitions: 3 } });
    expect(rejected.code).not.toBe(0);
    expect(rejected.out).toContain("partitions can only be increased");
    await admin.createTopics({
      topics: [{ topic: `${name}.legacy`, numPartitions: 8, replicationFactor: 1 }],
    });
    await patchSpec(ns, name, { topics: { extra: [{ name: `${name}.legacy`, partitions: 6 }] } });
    p = await pipelineWhen(
      ns,
      name,
      "NotSupported",
      (x) => condition(x, "TopicsReady")?.reason === "NotSupported",
      60_000,
    );
    const tc = condition(p, "TopicsReady");
    expect(tc.status).toBe("False");
    expect(tc.message).toContain(`topic ${name}.legacy: Decreasing partitions is not supported`);
    expect(tc.message).toContain("set this topic's partitions to 8 or more");
    expect(condition(p, "Ready")).toMatchObject({ status: "False", reason: "NotSupported" });
    expect(p.status.topics.find((t: Obj) => t.name === `${name}.legacy`)).toMatchObject({
      ready: "False",
      partitions: 8,
      reason: "NotSupported",
    });
    expect(p.status.topicsReady).toBe("8/9");
    expect(await partitions(`${name}.legacy`)).toBe(8);
    expect((await eventsFor(ns, name)).some((e: Obj) => e.reason === "NotSupported")).toBe(true);

    // Following the message fixes it.
    await patchSpec(ns, name, { topics: { extra: [{ name: `${name}.legacy`, partitions: 8 }] } });
    p = await topicsReady(ns, name, "TopicsReady again", 60_000);
    expect(p.status.topicsReady).toBe("9/9");
    expect((await topicConfig(`${name}.legacy`))["retention.ms"]).toBe("3600000");
  });

  it("provisions over SASL_SSL with the Secret's SCRAM credentials and CA; a wrong password is named in status, never shown", async () => {
    const all = readEnvFile(envFile(paths()), { all: true });
    const ns = await createNamespace("op-topics-sasl");
    const name = `gs-${suffix()}`;
    created.push(...SUFFIXES.map((s) => `${name}.${s}`));
    // A least-privilege user: the ACLs 'gavel kafka acls' generates for this pipeline (the operator's role included).
    const user = `${name}-op`;
    const password = randomBytes(18).toString("base64url");
    kafkaScramUser(readState(paths()).services.kafka!, user, password);
    const body = gavelPipeline(name, { topics: { partitions: 2, replicas: 1 } }) as {
      spec: { kafka: Record<string, unknown> };
    };
    body.spec.kafka.bootstrapServers = all.KAFKA_SASL_BOOTSTRAP_SERVERS;
    await admin.createAcls({
      acl: toKafkajsAcls(
        pipelineAcls(parsePipeline({ ...body, metadata: { name } }), { principal: `User:${user}` }),
      ),
    });
    const secret = (pw: string) => ({
      metadata: { name: "kafka-auth" },
      stringData: {
        KAFKA_SASL_MECHANISM: "SCRAM-SHA-512",
        KAFKA_SASL_USERNAME: user,
        KAFKA_SASL_PASSWORD: pw,
        KAFKA_TLS: "true",
        KAFKA_TLS_CA: readFileSync(all.KAFKA_TLS_CA!, "utf8"),
      },
    });
    const wrong = `${password}-wrong`;
    await core.createNamespacedSecret({ namespace: ns, body: secret(wrong) });
    operator(ns);
    await createPipeline(ns, body);
    const refused = await pipelineWhen(ns, name, "TopicsReady False naming the credentials", (x) => {
      const c = condition(x, "TopicsReady");
      return c?.status === "False" && /credentials/.test(c.message ?? "");
    });
    expect(condition(refused, "TopicsReady").message).toContain("KAFKA_SASL_PASSWORD");
    expect(await partitions(`${name}.bids`)).toBeUndefined();

    await core.replaceNamespacedSecret({ namespace: ns, name: "kafka-auth", body: secret(password) });
    const p = await topicsReady(ns, name, "TopicsReady over SASL_SSL", 90_000);
    expect(p.status.topicsReady).toBe("8/8");
    for (const s of SUFFIXES) expect(await partitions(`${name}.${s}`), s).toBe(2);
    // Secrets never reach status or events.
    const seen = JSON.stringify({ status: p.status, events: await eventsFor(ns, name) });
    expect(seen.includes(password)).toBe(false);
    expect(seen.includes(wrong)).toBe(false);
  });

  it("keeps provisioner immutable and requires clusterName for strimzi", async () => {
    const ns = await createNamespace("op-topics-api");
    const name = `gi-${suffix()}`;
    created.push(...SUFFIXES.map((s) => `${name}.${s}`));
    await createPipeline(ns, gavelPipeline(name));
    const r = await kubectlPatchSpec(ns, name, {
      kafka: { clusterName: "c", topics: { provisioner: "strimzi" } },
    });
    expect(r.code).not.toBe(0);
    expect(r.out).toContain("provisioner cannot be changed after creation");
    const body = pipeline(`${name}-s`) as { spec: { kafka: Record<string, unknown> } };
    body.spec.kafka = { bootstrapServers: "k:9092" };
    const bad = await createPipeline(ns, body).then(
      () => "",
      (err: unknown) => String((err as { body?: unknown }).body ?? err),
    );
    expect(bad).toContain("clusterName is required when topics.provisioner is strimzi");
  });
});

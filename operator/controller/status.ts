/**
 * The pure half of status: from the pipeline and the observed children to
 * `status`. No I/O, so it is unit-tested on plain objects.
 */
import type { ResolvedProcessor } from "../../api/v1alpha1/pipeline.ts";
import type {
  AuctionPipeline,
  AuctionPipelineStatus,
  Condition,
  FraudModelStatus,
  Phase,
  ProcessorStatus,
  RollupStatus,
  TopicStatus,
} from "../../api/v1alpha1/types.ts";
import { FRAUD_MODEL_ANNOTATION, LAST_ROLLUP_ANNOTATION } from "../../api/v1alpha1/types.ts";
import type { ProvisionedTopics } from "./topics.ts";

/** A child as read back (only the fields status needs). */
export interface ObservedObject {
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly generation?: number };
  readonly spec?: Record<string, unknown>;
  readonly status?: Record<string, unknown>;
}

interface KubeCondition {
  type?: string;
  status?: string;
  reason?: string;
  message?: string;
}

function conditionsOf(o: ObservedObject | undefined): KubeCondition[] {
  const c = o?.status?.conditions;
  return Array.isArray(c) ? (c as KubeCondition[]) : [];
}

function num(v: unknown): number {
  return typeof v === "number" ? v : 0;
}

export interface StatusInput {
  readonly pipeline: AuctionPipeline;
  /** Topics: Kafka topic name and, with the strimzi provisioner, the KafkaTopic object name. */
  readonly topics: readonly { readonly object?: string; readonly name: string }[];
  /** With the gavel provisioner: what this pass found and did in Kafka. */
  readonly provisioned?: ProvisionedTopics;
  readonly processors: readonly ResolvedProcessor[];
  /** Processor name -> Deployment object name. */
  readonly deploymentName: (processor: string) => string;
  readonly rollupName: string;
  /** Observed children by `Kind/name`. */
  readonly observed: ReadonlyMap<string, ObservedObject>;
  /** Set when applying failed: Ready=False with this reason and message. */
  readonly applyError?: { readonly reason: string; readonly message: string };
  readonly now: Date;
}

/** A condition as computed, before its lastTransitionTime is decided. */
type NewCondition = Omit<Condition, "lastTransitionTime">;

function cond(type: string, ok: boolean | "Unknown", reason: string, message: string): NewCondition {
  return { type, status: ok === "Unknown" ? "Unknown" : ok ? "True" : "False", reason, message };
}

export function parseLastRollup(annotations: Record<string, string> | undefined): RollupStatus | undefined {
  const raw = annotations?.[LAST_ROLLUP_ANNOTATION];
  if (raw === undefined) return undefined;
  try {
    const v = JSON.parse(raw) as Record<string, unknown>;
    if (typeof v.time !== "string" || (v.result !== "Succeeded" && v.result !== "Failed")) return undefined;
    const out: RollupStatus = { time: v.time, result: v.result };
    if (Array.isArray(v.days))
      out.days = v.days.filter((d): d is string => typeof d === "string").slice(0, 100);
    if (typeof v.message === "string") out.message = v.message.slice(0, 4096);
    return out;
  } catch {
    return undefined;
  }
}

/** `status.fraudModel` from the annotation `gavel fraud train` writes; undefined when absent or not one. */
export function parseFraudModel(
  annotations: Record<string, string> | undefined,
): FraudModelStatus | undefined {
  const raw = annotations?.[FRAUD_MODEL_ANNOTATION];
  if (raw === undefined) return undefined;
  try {
    const v = JSON.parse(raw) as Record<string, unknown>;
    const str = (x: unknown, max: number) => (typeof x === "string" && x.length <= max ? x : undefined);
    const version = str(v.version, 64);
    const object = str(v.object, 1024);
    const trainedAt = str(v.trainedAt, 64);
    const activeFrom = str(v.activeFrom, 64);
    const rows = typeof v.rows === "number" && Number.isInteger(v.rows) && v.rows >= 0 ? v.rows : undefined;
    if (!version || !object || !trainedAt || !activeFrom || rows === undefined) return undefined;
    return { version, object, trainedAt, activeFrom, rows };
  } catch {
    return undefined;
  }
}

type TopicsPart = { topics: TopicStatus[]; topicsCond: NewCondition };

/** Strimzi: topics mirror the KafkaTopics' own Ready conditions. */
function strimziTopics(input: StatusInput, clusterName: string): TopicsPart {
  const topics: TopicStatus[] = input.topics.map((t) => {
    const object = t.object ?? "";
    const ready = conditionsOf(input.observed.get(`KafkaTopic/${object}`)).find((c) => c.type === "Ready");
    const s: TopicStatus = {
      name: t.name,
      kafkaTopic: object,
      ready: ready?.status === "True" ? "True" : ready?.status === "False" ? "False" : "Unknown",
    };
    if (ready?.reason) s.reason = ready.reason;
    if (ready?.message) s.message = ready.message.slice(0, 4096);
    return s;
  });
  const readyTopics = topics.filter((t) => t.ready === "True").length;
  const failedTopic = topics.find((t) => t.ready === "False");
  const topicsCond = failedTopic
    ? cond(
        "TopicsReady",
        false,
        failedTopic.reason ?? "TopicNotReady",
        `KafkaTopic ${failedTopic.kafkaTopic} (${failedTopic.name}): ${failedTopic.message ?? "not ready"}${failedTopic.reason === "NotSupported" ? ". Kafka cannot apply this change (e.g. fewer partitions): restore the previous value" : ""}`,
      )
    : readyTopics === topics.length
      ? cond("TopicsReady", true, "AllTopicsReady", `${topics.length} topics ready`)
      : cond(
          "TopicsReady",
          "Unknown",
          "WaitingForTopicOperator",
          `${readyTopics}/${topics.length} topics ready; waiting for the Strimzi topic operator of cluster ${clusterName} (it must watch this namespace)`,
        );
  return { topics, topicsCond };
}

/** Gavel: topics as the operator found and left them in Kafka this pass. */
function gavelTopics(input: StatusInput): TopicsPart {
  const prov = input.provisioned;
  if (prov === undefined || "error" in prov) {
    const topics: TopicStatus[] = input.topics.map((t) => ({ name: t.name, ready: "Unknown" }));
    const topicsCond = prov
      ? cond("TopicsReady", false, prov.error.reason, prov.error.message)
      : cond(
          "TopicsReady",
          "Unknown",
          "Provisioning",
          "the operator has not checked the topics in Kafka yet",
        );
    return { topics, topicsCond };
  }
  const topics: TopicStatus[] = input.topics.map((t) => {
    const o = prov.topics.get(t.name);
    const s: TopicStatus = { name: t.name, ready: o?.ready ?? "Unknown" };
    if (o?.partitions !== undefined) s.partitions = o.partitions;
    if (o?.reason) s.reason = o.reason;
    if (o?.message) s.message = o.message.slice(0, 4096);
    return s;
  });
  const failed = topics.filter((t) => t.ready === "False");
  const first = failed[0];
  const readyTopics = topics.filter((t) => t.ready === "True").length;
  const topicsCond = first
    ? cond(
        "TopicsReady",
        false,
        first.reason ?? "TopicNotReady",
        `topic ${first.name}: ${first.message ?? "not ready"}${
          failed.length > 1
            ? ` (and ${failed.length - 1} more: ${failed
                .slice(1)
                .map((t) => t.name)
                .join(", ")})`
            : ""
        }`,
      )
    : readyTopics === topics.length
      ? cond("TopicsReady", true, "AllTopicsReady", `${topics.length} topics ready in Kafka`)
      : cond(
          "TopicsReady",
          "Unknown",
          "Provisioning",
          `${readyTopics}/${topics.length} topics ready in Kafka`,
        );
  return { topics, topicsCond };
}

/** Compute the whole status; `lastTransitionTime` is kept from `previous` for unchanged conditions. */
export function computeStatus(input: StatusInput): AuctionPipelineStatus {
  const p = input.pipeline;
  const suspended = p.spec.suspend;
  const generation = p.metadata.generation ?? 0;

  const { topics, topicsCond } =
    p.spec.kafka.topics.provisioner === "gavel"
      ? gavelTopics(input)
      : strimziTopics(input, p.spec.kafka.clusterName ?? "");
  const readyTopics = topics.filter((t) => t.ready === "True").length;
  const { processors, available, processorsCond } = processorsPart(input, suspended);
  const parts = [topicsCond, processorsCond, rollupCondition(input, suspended)];
  const readyCond = readyCondition(input, suspended, parts);

  const status: AuctionPipelineStatus = {
    observedGeneration: generation,
    phase: phaseOf(input, suspended, readyCond),
    conditions: withTransitionTimes(input, [readyCond, ...parts], generation),
    topicsReady: `${readyTopics}/${topics.length}`,
    processorsReady: `${suspended ? 0 : available}/${input.processors.length}`,
    topics,
    processors,
  };
  const lastRollup = parseLastRollup(p.metadata.annotations);
  if (lastRollup) status.lastRollup = lastRollup;
  else if (p.status?.lastRollup) status.lastRollup = p.status.lastRollup;
  const fraudModel = parseFraudModel(p.metadata.annotations);
  if (fraudModel) status.fraudModel = fraudModel;
  else if (p.status?.fraudModel) status.fraudModel = p.status.fraudModel;
  return status;
}

/** Processors: Deployment replicas, and how many are available (observed at their generation, Available, one replica up). */
function processorsPart(
  input: StatusInput,
  suspended: boolean,
): { processors: ProcessorStatus[]; available: number; processorsCond: NewCondition } {
  const deployment = (proc: ResolvedProcessor) =>
    input.observed.get(`Deployment/${input.deploymentName(proc.name)}`);
  const processors: ProcessorStatus[] = input.processors.map((proc) => {
    const d = deployment(proc);
    return {
      name: proc.name,
      desiredReplicas: suspended ? 0 : num(d?.spec?.replicas),
      readyReplicas: num(d?.status?.readyReplicas),
      availableReplicas: num(d?.status?.availableReplicas),
      minReplicas: suspended ? 0 : proc.effectiveMinReplicas,
      maxReplicas: suspended ? 0 : proc.effectiveMaxReplicas,
    };
  });
  const available = input.processors.filter((proc) => {
    const d = deployment(proc);
    if (d === undefined) return false;
    const current = num(d.status?.observedGeneration) >= num(d.metadata.generation);
    const avail = conditionsOf(d).find((c) => c.type === "Available")?.status === "True";
    return current && avail && num(d.status?.availableReplicas) >= 1;
  });
  const processorsCond = suspended
    ? cond("ProcessorsReady", false, "Suspended", "the pipeline is suspended: processors are scaled to zero")
    : input.processors.length === 0
      ? cond("ProcessorsReady", true, "NoProcessors", "no processors are configured")
      : available.length === input.processors.length
        ? cond("ProcessorsReady", true, "AllAvailable", `${available.length} processors available`)
        : cond(
            "ProcessorsReady",
            false,
            "Unavailable",
            `waiting for ${input.processors
              .filter((x) => !available.includes(x))
              .map((x) => input.deploymentName(x.name))
              .join(", ")} to become available`,
          );
  return { processors, available: available.length, processorsCond };
}

/** RollupScheduled: the rollup CronJob exists (and is not suspended with the pipeline). */
function rollupCondition(input: StatusInput, suspended: boolean): NewCondition {
  const { rollup } = input.pipeline.spec;
  if (suspended)
    return cond(
      "RollupScheduled",
      false,
      "Suspended",
      "the pipeline is suspended: the rollup CronJob is suspended",
    );
  if (input.observed.get(`CronJob/${input.rollupName}`) === undefined)
    return cond("RollupScheduled", false, "Missing", `CronJob ${input.rollupName} does not exist yet`);
  return cond(
    "RollupScheduled",
    true,
    "Scheduled",
    `CronJob ${input.rollupName} runs '${rollup.schedule}' in ${rollup.timeZone}`,
  );
}

/** Ready: false on an apply error or when suspended, else the first part that is not ready. */
function readyCondition(
  input: StatusInput,
  suspended: boolean,
  parts: readonly NewCondition[],
): NewCondition {
  if (input.applyError) return cond("Ready", false, input.applyError.reason, input.applyError.message);
  if (suspended) return cond("Ready", false, "Suspended", "the pipeline is suspended (spec.suspend: true)");
  const notReady = parts.find((c) => c.status !== "True");
  return notReady
    ? cond("Ready", false, notReady.reason, `${notReady.type}: ${notReady.message}`)
    : cond("Ready", true, "Ready", "all topics, processors and the rollup schedule are ready");
}

/** The phase: a pipeline that was ready and no longer is is Degraded, one that never was is Progressing. */
function phaseOf(input: StatusInput, suspended: boolean, readyCond: NewCondition): Phase {
  if (input.applyError) return input.applyError.reason === "InvalidSpec" ? "Failed" : "Degraded";
  if (suspended) return "Suspended";
  if (readyCond.status === "True") return "Ready";
  const prevPhase = input.pipeline.status?.phase;
  return prevPhase === "Ready" || prevPhase === "Degraded" ? "Degraded" : "Progressing";
}

/** The conditions as written: a condition whose status did not change keeps its lastTransitionTime. */
function withTransitionTimes(
  input: StatusInput,
  conds: readonly NewCondition[],
  generation: number,
): Condition[] {
  const previous = new Map((input.pipeline.status?.conditions ?? []).map((c) => [c.type, c]));
  return conds.map((c) => {
    const prev = previous.get(c.type);
    const lastTransitionTime =
      prev && prev.status === c.status
        ? prev.lastTransitionTime
        : input.now.toISOString().replace(/\.\d+Z$/, "Z");
    return { ...c, message: c.message.slice(0, 4096), lastTransitionTime, observedGeneration: generation };
  });
}

/** Whether two statuses differ (the operator writes status only then). */
export function statusChanged(a: AuctionPipelineStatus | undefined, b: AuctionPipelineStatus): boolean {
  return JSON.stringify(canonical(a ?? {})) !== JSON.stringify(canonical(b));
}

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v !== null && typeof v === "object")
    return Object.fromEntries(
      Object.entries(v)
        .filter(([, x]) => x !== undefined)
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([k, x]) => [k, canonical(x)]),
    );
  return v;
}

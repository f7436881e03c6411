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

function cond(
  type: string,
  ok: boolean | "Unknown",
  reason: string,
  message: string,
): Omit<Condition, "lastTransitionTime"> {
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

type TopicsPart = { topics: TopicStatus[]; topicsCond: Omit<Condition, "lastTransitionTime"> };

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

  // Processors: Deployment availability.
  const processors: ProcessorStatus[] = input.processors.map((proc) => {
    const d = input.observed.get(`Deployment/${input.deploymentName(proc.name)}`);
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
    const d = input.observed.get(`Deployment/${input.deploymentName(proc.name)}`);
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

  const cron = input.observed.get(`CronJob/${input.rollupName}`);
  const rollupCond = suspended
    ? cond(
        "RollupScheduled",
        false,
        "Suspended",
        "the pipeline is suspended: the rollup CronJob is suspended",
      )
    : cron === undefined
      ? cond("RollupScheduled", false, "Missing", `CronJob ${input.rollupName} does not exist yet`)
      : cond(
          "RollupScheduled",
          true,
          "Scheduled",
          `CronJob ${input.rollupName} runs '${p.spec.rollup.schedule}' in ${p.spec.rollup.timeZone}`,
        );

  const parts = [topicsCond, processorsCond, rollupCond];
  let readyCond: Omit<Condition, "lastTransitionTime">;
  if (input.applyError) readyCond = cond("Ready", false, input.applyError.reason, input.applyError.message);
  else if (suspended)
    readyCond = cond("Ready", false, "Suspended", "the pipeline is suspended (spec.suspend: true)");
  else {
    const notReady = parts.find((c) => c.status !== "True");
    readyCond = notReady
      ? cond("Ready", false, notReady.reason, `${notReady.type}: ${notReady.message}`)
      : cond("Ready", true, "Ready", "all topics, processors and the rollup schedule are ready");
  }

  const prevPhase = p.status?.phase;
  let phase: Phase;
  if (input.applyError) phase = input.applyError.reason === "InvalidSpec" ? "Failed" : "Degraded";
  else if (suspended) phase = "Suspended";
  else if (readyCond.status === "True") phase = "Ready";
  else if (prevPhase === "Ready" || prevPhase === "Degraded") phase = "Degraded";
  else phase = "Progressing";

  const previous = new Map((p.status?.conditions ?? []).map((c) => [c.type, c]));
  const conditions: Condition[] = [readyCond, ...parts].map((c) => {
    const prev = previous.get(c.type);
    const lastTransitionTime =
      prev && prev.status === c.status
        ? prev.lastTransitionTime
        : input.now.toISOString().replace(/\.\d+Z$/, "Z");
    return { ...c, message: c.message.slice(0, 4096), lastTransitionTime, observedGeneration: generation };
  });

  const status: AuctionPipelineStatus = {
    observedGeneration: generation,
    phase,
    conditions,
    topicsReady: `${readyTopics}/${topics.length}`,
    processorsReady: `${suspended ? 0 : available.length}/${input.processors.length}`,
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

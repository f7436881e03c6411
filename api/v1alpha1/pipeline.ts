/**
 * Reading an AuctionPipeline outside the API server (files given to
 * `gavel synth`, the ConfigMap a processor reads, objects from the informer):
 * validate with the TypeBox schema, apply defaults the way the API server
 * does, re-check the CEL cross-field rules in TypeScript, and resolve the
 * derived values (topic names, processors) every component needs.
 */
import { readFile } from "node:fs/promises";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { Value } from "@sinclair/typebox/value";
import { CronExpressionParser } from "cron-parser";
import { parseAllDocuments } from "yaml";
import {
  API_VERSION,
  type AuctionPipeline,
  AuctionPipelineSchema,
  CLUSTER_NAME_REQUIRED_MESSAGE,
  CO_PARTITIONED_MESSAGE,
  ExtraTopic,
  KIND,
  LOGICAL_TOPICS,
  type LogicalTopicKey,
  OUTPUT_PARTITIONS_MESSAGE,
  PROCESSOR_KEYS,
  PROCESSORS,
  type ProcessorKey,
  type ProcessorName,
  type ProcessorSpec,
  ProcessorSpec as ProcessorSpecSchema,
  type TopicSuffix,
} from "./types.ts";

export type { AuctionPipeline } from "./types.ts";

const checker = TypeCompiler.Compile(AuctionPipelineSchema);

/** The pipeline does not satisfy the API: `problems` name each field path and how to fix it. */
export class PipelineValidationError extends Error {
  readonly problems: readonly string[];
  constructor(source: string, problems: readonly string[]) {
    super(
      `invalid AuctionPipeline${source ? ` in ${source}` : ""}:\n${problems.map((p) => `  - ${p}`).join("\n")}`,
    );
    this.name = "PipelineValidationError";
    this.problems = problems;
  }
}

function dotted(pointer: string): string {
  if (pointer === "") return "(root)";
  return pointer
    .slice(1)
    .split("/")
    .map((s) => s.replaceAll("~1", "/").replaceAll("~0", "~"))
    .map((s) => (/^\d+$/.test(s) ? `[${s}]` : `.${s}`))
    .join("")
    .replace(/^\./, "");
}

function describeSchemaError(
  path: string,
  message: string,
  schema: Record<string, unknown>,
  value: unknown,
): string {
  const hints: string[] = [];
  if (schema.minimum !== undefined || schema.maximum !== undefined)
    hints.push(`allowed range ${schema.minimum ?? "-inf"}..${schema.maximum ?? "inf"}`);
  if (Array.isArray(schema.anyOf)) {
    const consts = (schema.anyOf as Record<string, unknown>[])
      .map((s) => s.const)
      .filter((c) => c !== undefined);
    if (consts.length > 0) hints.push(`one of ${consts.map((c) => JSON.stringify(c)).join(", ")}`);
  }
  const got = value === undefined ? "missing" : `got ${JSON.stringify(value)}`;
  const d = typeof schema.description === "string" ? schema.description : "";
  const desc = d ? ` (${d.length > 140 ? `${d.slice(0, 137)}...` : d})` : "";
  return `${path}: ${message}${hints.length ? ` (${hints.join("; ")})` : ""}, ${got}${desc}`;
}

/** Known fields per object, to report typos (the API server drops unknown fields silently). */
function unknownFields(value: unknown, schema: Record<string, unknown>, path: string, out: string[]): void {
  if (value === null || typeof value !== "object") return;
  if (Array.isArray(value)) {
    const items = schema.items as Record<string, unknown> | undefined;
    if (items) {
      for (const [i, v] of value.entries()) unknownFields(v, items, `${path}[${i}]`, out);
    }
    return;
  }
  const props = schema.properties as Record<string, Record<string, unknown>> | undefined;
  if (!props || schema.additionalProperties === true) return;
  for (const [k, v] of Object.entries(value)) {
    const p = path ? `${path}.${k}` : k;
    const sub = props[k];
    if (sub === undefined) {
      out.push(`${p}: unknown field; known fields here are ${Object.keys(props).join(", ")}`);
    } else {
      unknownFields(v, sub, p, out);
    }
  }
}

/** The CEL rules of types.ts, in TypeScript (same messages). */
function crossFieldProblems(p: AuctionPipeline): string[] {
  const out: string[] = [];
  const s = p.spec;
  for (const key of PROCESSOR_KEYS) {
    const ps = s.processors?.[key];
    if (ps && ps.minReplicas > ps.maxReplicas)
      out.push(
        `spec.processors.${key}.minReplicas: minReplicas must be less than or equal to maxReplicas: lower minReplicas or raise maxReplicas`,
      );
  }
  const bp = s.processors?.bidProcessor;
  const parts = (k: keyof typeof s.topics.overrides): number =>
    s.topics.overrides[k]?.partitions ?? s.topics.partitions;
  const bidsPartitions = parts("bids");
  if (parts("auctions") !== bidsPartitions || parts("prices") !== bidsPartitions)
    out.push(`spec.topics.overrides: ${CO_PARTITIONED_MESSAGE}`);
  if (
    (["bidsAccepted", "bidsRejected", "fraudAlerts", "transactions"] as const).some(
      (k) => parts(k) < bidsPartitions,
    )
  )
    out.push(`spec.topics.overrides: ${OUTPUT_PARTITIONS_MESSAGE}`);
  if (bp && bp.maxReplicas > bidsPartitions)
    out.push(
      `spec.processors.bidProcessor.maxReplicas: processors.bidProcessor.maxReplicas must not exceed the partitions of the bids topic (extra consumers would sit idle): lower maxReplicas or raise the partitions`,
    );
  if (s.kafka.topics.provisioner === "strimzi" && s.kafka.clusterName === undefined)
    out.push(`spec.kafka.clusterName: ${CLUSTER_NAME_REQUIRED_MESSAGE}`);
  for (const k of Object.keys(s.observability.resourceAttributes ?? {}))
    if (!/^[A-Za-z0-9._/-]+$/.test(k))
      out.push(
        `spec.observability.resourceAttributes: resourceAttributes keys may hold only letters, digits and '.', '_', '/', '-' (they are joined into OTEL_RESOURCE_ATTRIBUTES as key=value,...), got ${JSON.stringify(k)}`,
      );
  if (s.fraud.alertThreshold > s.fraud.quarantineThreshold)
    out.push(
      "spec.fraud.alertThreshold: alertThreshold must be less than or equal to quarantineThreshold: every quarantined bid should also raise an alert",
    );
  try {
    Intl.DateTimeFormat("en-US", { timeZone: s.rollup.timeZone });
  } catch {
    out.push(
      `spec.rollup.timeZone: unknown time zone ${JSON.stringify(s.rollup.timeZone)}: use an IANA name like 'UTC' or 'Europe/Berlin'`,
    );
  }
  if (/^\s*(CRON_)?TZ=/.test(s.rollup.schedule)) {
    out.push("spec.rollup.schedule: set the zone in rollup.timeZone, not in the schedule");
  } else {
    try {
      if (s.rollup.schedule.trim().split(/\s+/).length !== 5 && !s.rollup.schedule.startsWith("@"))
        throw new Error("expected 5 fields");
      CronExpressionParser.parse(s.rollup.schedule, { tz: "UTC" });
    } catch (err) {
      out.push(
        `spec.rollup.schedule: ${JSON.stringify(s.rollup.schedule)} is not a valid cron expression (${(err as Error).message}): use 5 fields 'minute hour day-of-month month day-of-week', e.g. '15 0 * * *', or a macro like '@daily'`,
      );
    }
  }
  const names = new Map<string, string>();
  for (const t of allTopics(p)) {
    const prev = names.get(t.name);
    if (prev)
      out.push(
        `spec.topics: topics ${prev} and ${t.key} both resolve to Kafka topic ${t.name}: give one another name`,
      );
    names.set(t.name, t.key);
  }
  return out;
}

/**
 * Validate an object (parsed YAML/JSON or from the API server), apply the
 * defaults and return the typed pipeline. Throws PipelineValidationError with
 * one line per problem. The input is not modified.
 */
export function parsePipeline(obj: unknown, source = ""): AuctionPipeline {
  if (obj === null || typeof obj !== "object" || Array.isArray(obj))
    throw new PipelineValidationError(source, [
      "(root): expected an AuctionPipeline object (apiVersion, kind, metadata, spec)",
    ]);
  const raw = obj as Record<string, unknown>;
  if (raw.apiVersion !== API_VERSION || raw.kind !== KIND)
    throw new PipelineValidationError(source, [
      `(root): expected apiVersion: ${API_VERSION} and kind: ${KIND}, got apiVersion: ${JSON.stringify(raw.apiVersion)}, kind: ${JSON.stringify(raw.kind)}`,
    ]);
  const problems: string[] = [];
  unknownFields(
    { spec: raw.spec },
    { properties: { spec: AuctionPipelineSchema.properties.spec } },
    "",
    problems,
  );
  const value = Value.Default(AuctionPipelineSchema, Value.Clone(raw));
  if (!checker.Check(value)) {
    const seen = new Set<string>();
    for (const e of checker.Errors(value)) {
      const path = dotted(e.path);
      // A union of literals reports each branch; one line per path is enough.
      if (seen.has(path)) continue;
      seen.add(path);
      problems.push(describeSchemaError(path, e.message, e.schema as Record<string, unknown>, e.value));
    }
  }
  if (problems.length > 0) throw new PipelineValidationError(source, problems);
  const pipeline = value as AuctionPipeline;
  const cross = crossFieldProblems(pipeline);
  if (cross.length > 0) throw new PipelineValidationError(source, cross);
  return pipeline;
}

/** Read a YAML or JSON file holding one AuctionPipeline (the first document of that kind). */
export async function loadPipelineFile(path: string): Promise<AuctionPipeline> {
  const text = await readFile(path, "utf8");
  const docs = parseAllDocuments(text);
  const objs: unknown[] = [];
  for (const d of docs) {
    if (d.errors.length > 0)
      throw new PipelineValidationError(
        path,
        d.errors.map((e) => `YAML: ${e.message}`),
      );
    const js = d.toJS() as unknown;
    if (js !== null && js !== undefined) objs.push(js);
  }
  const found = objs.find((o) => (o as { kind?: unknown }).kind === KIND) ?? objs[0];
  if (found === undefined) throw new PipelineValidationError(path, ["(root): the file is empty"]);
  return parsePipeline(found, path);
}

// ---------------------------------------------------------------------------
// Derived values
// ---------------------------------------------------------------------------

/** A topic with every setting resolved. */
export interface ResolvedTopic {
  /** Logical key (`bidsAccepted`) for pipeline topics, `extra:<name>` for extra topics. */
  readonly key: string;
  /** Suffix from domain.md (`bids.accepted`), undefined for extra topics. */
  readonly suffix?: TopicSuffix;
  /** Kafka topic name. */
  readonly name: string;
  readonly partitions: number;
  readonly replicas: number;
  readonly compacted: boolean;
  /** Kafka topic config (strings), including `cleanup.policy` and `retention.ms`. */
  readonly config: Readonly<Record<string, string>>;
}

function topicConfig(
  p: AuctionPipeline,
  compacted: boolean,
  retentionMs: number,
  own: Record<string, string> | undefined,
): Record<string, string> {
  const cfg: Record<string, string> = { "cleanup.policy": compacted ? "compact" : "delete" };
  if (!compacted) cfg["retention.ms"] = String(retentionMs);
  return { ...cfg, ...(p.spec.topics.config ?? {}), ...(own ?? {}) };
}

/**
 * The pipeline's logical topics (domain.md) with names and settings resolved:
 * `<pipeline-name>.<suffix>` unless overridden. Keyed by suffix:
 * `topicNames(p)["bids.accepted"].name`.
 */
export function topicNames(pipeline: AuctionPipeline): Record<TopicSuffix, ResolvedTopic> {
  const t = pipeline.spec.topics;
  const out = {} as Record<TopicSuffix, ResolvedTopic>;
  for (const [key, def] of Object.entries(LOGICAL_TOPICS) as [
    LogicalTopicKey,
    (typeof LOGICAL_TOPICS)[LogicalTopicKey],
  ][]) {
    const o = t.overrides[key] ?? {};
    out[def.suffix] = {
      key,
      suffix: def.suffix,
      name: o.name ?? `${pipeline.metadata.name}.${def.suffix}`,
      partitions: o.partitions ?? t.partitions,
      replicas: o.replicas ?? t.replicas,
      compacted: def.compacted,
      config: topicConfig(pipeline, def.compacted, o.retentionMs ?? t.retentionMs, o.config),
    };
  }
  return out;
}

/** Every topic the pipeline manages: the eight logical ones, then `spec.topics.extra`. */
export function allTopics(pipeline: AuctionPipeline): ResolvedTopic[] {
  const t = pipeline.spec.topics;
  const extra = t.extra.map((e0): ResolvedTopic => {
    const e = Value.Default(ExtraTopic, structuredClone(e0)) as typeof e0;
    return {
      key: `extra:${e.name}`,
      name: e.name,
      partitions: e.partitions ?? t.partitions,
      replicas: e.replicas ?? t.replicas,
      compacted: e.compacted,
      config: topicConfig(pipeline, e.compacted, e.retentionMs ?? t.retentionMs, e.config),
    };
  });
  return [...Object.values(topicNames(pipeline)), ...extra];
}

/** A processor that runs, with its spec resolved. */
export interface ResolvedProcessor {
  readonly key: ProcessorKey;
  /** `ingest`, `bid-processor`, `silver-writer`, `bronze-archiver`. */
  readonly name: ProcessorName;
  readonly spec: ProcessorSpec;
  readonly image: string;
  /** Topics it consumes (empty for ingest). */
  readonly consumes: readonly ResolvedTopic[];
  /** maxReplicas after clamping consumers to the partitions of their busiest input topic. */
  readonly effectiveMaxReplicas: number;
  readonly effectiveMinReplicas: number;
}

/** The processors that run: all four with defaults when `spec.processors` is omitted. */
export function processors(pipeline: AuctionPipeline): ResolvedProcessor[] {
  const listed = pipeline.spec.processors;
  const byKey = topicNames(pipeline);
  const bySuffix = (k: LogicalTopicKey) => byKey[LOGICAL_TOPICS[k].suffix];
  const out: ResolvedProcessor[] = [];
  for (const key of PROCESSOR_KEYS) {
    const spec0 = listed === undefined ? {} : listed[key];
    if (spec0 === undefined) continue;
    const spec = Value.Default(ProcessorSpecSchema, structuredClone(spec0)) as ProcessorSpec;
    const consumes = PROCESSORS[key].consumes.map(bySuffix);
    const maxPartitions =
      consumes.length === 0 ? Number.POSITIVE_INFINITY : Math.max(...consumes.map((t) => t.partitions));
    const max = Math.max(1, Math.min(spec.maxReplicas, maxPartitions));
    out.push({
      key,
      name: PROCESSORS[key].name,
      spec,
      image: spec.image ?? pipeline.spec.image,
      consumes,
      effectiveMaxReplicas: max,
      effectiveMinReplicas: Math.min(spec.minReplicas, max),
    });
  }
  return out;
}

/** S3 key prefix (ends with `/`): `spec.storage.s3.prefix` or `<pipeline-name>/`. */
export function s3Prefix(pipeline: AuctionPipeline): string {
  return pipeline.spec.storage.s3.prefix ?? `${pipeline.metadata.name}/`;
}

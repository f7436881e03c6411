/**
 * Reconcile one AuctionPipeline key: desired (pure) -> server-side apply of
 * every child under one field manager -> prune children we own that are no
 * longer desired -> status (pure), written only when it changed.
 */
import {
  type CustomObjectsApi,
  type KubernetesObject,
  type KubernetesObjectApi,
  type ObjectCache,
  PatchStrategy,
  type V1Secret,
} from "@kubernetes/client-node";
import { ENV } from "../../api/env.ts";
import {
  type AuctionPipeline,
  allTopics,
  PipelineValidationError,
  parsePipeline,
  processors,
} from "../../api/v1alpha1/pipeline.ts";
import { GROUP, KIND, PLURAL, VERSION } from "../../api/v1alpha1/types.ts";
import { desired, type KubeObject, objectKey } from "../../cdk8s/desired.ts";
import {
  kafkaTopicObjectName,
  MANAGED_BY,
  MANAGED_BY_LABEL,
  PIPELINE_LABEL,
  processorObjectName,
  rollupObjectName,
} from "../../cdk8s/names.ts";
import type { KafkaSecurity } from "../../lib/config.ts";
import type { Logger } from "../../lib/log.ts";
import { apiMessage, httpStatus, type ReconcileResult, TerminalError } from "./errors.ts";
import type { EventRecorder } from "./events.ts";
import { MANAGED_KINDS } from "./kinds.ts";
import { computeStatus, type ObservedObject, statusChanged } from "./status.ts";
import {
  kafkaSecurityFromSecret,
  type ProvisionedTopics,
  provisionTopics,
  type TopicAdmin,
  type TopicAdminFactory,
} from "./topics.ts";

export const FIELD_MANAGER = "gavel-operator";
/** Safety net while waiting on children that report no events we watch. */
const WAIT_REQUEUE_MS = 30_000;
const APPLY_CONCURRENCY = 4;

export interface ReconcilerDeps {
  readonly objects: KubernetesObjectApi;
  readonly custom: CustomObjectsApi;
  readonly pipelines: ObjectCache<KubernetesObject>;
  /** Informer caches of the children by kind (a missing kind is treated as empty). */
  readonly children: ReadonlyMap<string, ObjectCache<KubernetesObject>>;
  readonly events: EventRecorder;
  readonly log: Logger;
  /** Kafka admin clients for pipelines with `spec.kafka.topics.provisioner: gavel`. */
  readonly topicAdmin: TopicAdminFactory;
}

type RawPipeline = KubernetesObject & { spec?: unknown; status?: AuctionPipeline["status"] };

function controllerUid(o: KubernetesObject): string | undefined {
  return o.metadata?.ownerReferences?.find((r) => r.controller && r.kind === KIND)?.uid;
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

export class Reconciler {
  readonly #d: ReconcilerDeps;

  constructor(deps: ReconcilerDeps) {
    this.#d = deps;
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const [namespace, name] = key.split("/") as [string, string];
    const raw = this.#d.pipelines.get(name, namespace) as RawPipeline | undefined;
    if (raw === undefined) {
      await this.#cleanupDeleted(namespace, name);
      return {};
    }
    if (raw.metadata?.deletionTimestamp) return {};
    const uid = raw.metadata?.uid ?? "";
    const target = { name, namespace, uid };

    let pipeline: AuctionPipeline;
    try {
      const { status: _status, ...withoutStatus } = raw;
      pipeline = parsePipeline(withoutStatus, `${namespace}/${name}`);
      if (raw.status) pipeline.status = raw.status;
    } catch (err) {
      if (!(err instanceof PipelineValidationError)) throw err;
      const message = err.problems.join("; ");
      await this.#d.events.warning(target, "InvalidSpec", message);
      await this.#writeFailure(raw, "InvalidSpec", message);
      throw new TerminalError("InvalidSpec", message);
    }

    // gavel provisioner: topics first, so processors find them when they start.
    const provisioned =
      pipeline.spec.kafka.topics.provisioner === "gavel"
        ? await this.#provisionTopics(pipeline, target, key)
        : undefined;

    const want = desired(pipeline, { namespace, owner: { uid } });
    const observed = new Map<string, ObservedObject>();
    let applyError: { reason: string; message: string; terminal: boolean } | undefined;

    // Apply (server-side, forced: the operator owns these fields; drift is overwritten).
    const results = await mapLimit(want, APPLY_CONCURRENCY, async (obj) => {
      const existed = this.#cached(obj) !== undefined;
      try {
        const applied = (await this.#d.objects.patch(
          obj as KubernetesObject,
          undefined,
          undefined,
          FIELD_MANAGER,
          true,
          PatchStrategy.ServerSideApply,
        )) as unknown as ObservedObject;
        return { obj, applied, existed };
      } catch (err) {
        return { obj, err, existed };
      }
    });
    const created: string[] = [];
    for (const r of results) {
      if ("err" in r) {
        const code = httpStatus(r.err);
        const msg = `${objectKey(r.obj)}: ${apiMessage(r.err)}`;
        this.#d.log.warn({ pipeline: key, object: objectKey(r.obj), code, err: msg }, "apply failed");
        applyError ??= {
          reason: code === 403 ? "Forbidden" : code === 422 || code === 400 ? "ApplyRejected" : "ApplyFailed",
          message: msg,
          terminal: code === 422 || code === 400,
        };
      } else {
        observed.set(objectKey(r.obj), r.applied);
        if (!r.existed) created.push(objectKey(r.obj));
      }
    }
    if (created.length > 0) {
      this.#d.log.info({ pipeline: key, created }, "created children");
      await this.#d.events.normal(target, "Created", `created ${created.join(", ")}`);
    }
    if (applyError) await this.#d.events.warning(target, applyError.reason, applyError.message);

    // Prune: children we control, carrying our labels, that are no longer desired.
    if (!applyError) {
      const wanted = new Set(want.map(objectKey));
      const pruned: string[] = [];
      for (const k of MANAGED_KINDS) {
        for (const o of this.#owned(k.kind, namespace, name)) {
          if (controllerUid(o) !== uid) continue;
          const id = `${k.kind}/${o.metadata?.name}`;
          if (wanted.has(id)) continue;
          try {
            await this.#d.objects.delete({
              apiVersion: k.apiVersion,
              kind: k.kind,
              metadata: { name: o.metadata?.name, namespace },
            });
            pruned.push(id);
          } catch (err) {
            if (httpStatus(err) !== 404) throw err;
          }
        }
      }
      if (pruned.length > 0) {
        this.#d.log.info({ pipeline: key, pruned }, "pruned children");
        await this.#d.events.normal(target, "Pruned", `deleted ${pruned.join(", ")} (no longer in the spec)`);
      }
    }

    // Status.
    const prevPhase = pipeline.status?.phase;
    const status = computeStatus({
      pipeline,
      topics: allTopics(pipeline).map((t) =>
        provisioned ? { name: t.name } : { object: kafkaTopicObjectName(name, t), name: t.name },
      ),
      ...(provisioned ? { provisioned } : {}),
      processors: processors(pipeline),
      deploymentName: (proc) => processorObjectName(name, proc),
      rollupName: rollupObjectName(name),
      observed,
      ...(applyError ? { applyError } : {}),
      now: new Date(),
    });
    if (statusChanged(raw.status, status)) {
      await this.#writeStatus(raw, status);
      if (status.phase !== prevPhase) {
        if (status.phase === "Suspended")
          await this.#d.events.normal(target, "Suspended", "processors scaled to zero, rollup suspended");
        else if (prevPhase === "Suspended")
          await this.#d.events.normal(target, "Resumed", "processors and rollup resumed");
        if (status.phase === "Ready") await this.#d.events.normal(target, "Ready", "all children are ready");
      }
    }
    if (applyError) {
      if (applyError.terminal) throw new TerminalError(applyError.reason, applyError.message);
      throw new Error(applyError.message);
    }
    const ready = status.conditions?.find((c) => c.type === "Ready")?.status === "True";
    return ready || pipeline.spec.suspend ? {} : { requeueAfterMs: WAIT_REQUEUE_MS };
  }

  /**
   * The gavel provisioner's pass: connect as the processors do (bootstrap
   * servers, the auth Secret by reference; its contents are never logged),
   * create/grow/configure, and report per topic.
   */
  async #provisionTopics(
    p: AuctionPipeline,
    target: { name: string; namespace: string; uid: string },
    key: string,
  ): Promise<ProvisionedTopics> {
    const failed = async (reason: string, message: string): Promise<ProvisionedTopics> => {
      this.#d.log.warn({ pipeline: key, reason, err: message }, "topics not provisioned");
      await this.#d.events.warning(target, reason, message);
      return { error: { reason, message } };
    };
    const brokers = p.spec.kafka.bootstrapServers;
    let security: KafkaSecurity | undefined;
    const ref = p.spec.kafka.authSecretRef;
    if (ref !== undefined) {
      let secret: V1Secret;
      try {
        secret = (await this.#d.objects.read({
          apiVersion: "v1",
          kind: "Secret",
          metadata: { name: ref.name, namespace: target.namespace },
        })) as V1Secret;
      } catch (err) {
        const code = httpStatus(err);
        if (code === 404)
          return failed(
            "KafkaAuthSecretNotFound",
            `Secret ${ref.name} (spec.kafka.authSecretRef) does not exist in namespace ${target.namespace}: create it with ${ENV.kafkaSaslMechanism.name}, ${ENV.kafkaSaslUsername.name}, ${ENV.kafkaSaslPassword.name} and/or ${ENV.kafkaTls.name}, ${ENV.kafkaTlsCa.name}, or remove authSecretRef for a plaintext listener`,
          );
        if (code === 403)
          return failed(
            "Forbidden",
            `the operator may not read Secret ${target.namespace}/${ref.name} (spec.kafka.authSecretRef), which the gavel topic provisioner needs: grant it get on secrets (operator/rbac.ts; the chart's ClusterRole has it)`,
          );
        return failed("KafkaAuthSecretUnreadable", `reading Secret ${ref.name}: ${apiMessage(err)}`);
      }
      try {
        security = kafkaSecurityFromSecret(secret.data);
      } catch (err) {
        return failed("InvalidKafkaAuthSecret", `Secret ${ref.name}: ${(err as Error).message}`);
      }
    }
    let admin: TopicAdmin | undefined;
    try {
      admin = await this.#d.topicAdmin({ brokers, ...(security ? { security } : {}) });
      const { topics, report } = await provisionTopics(admin, allTopics(p));
      const changes = { created: report.created, grown: report.grown, configured: report.configured };
      if (report.created.length + report.grown.length + report.configured.length > 0) {
        this.#d.log.info({ pipeline: key, ...changes }, "provisioned topics in Kafka");
        const parts = [
          report.created.length > 0 ? `created ${report.created.join(", ")}` : "",
          report.grown.length > 0 ? `grew ${report.grown.join(", ")}` : "",
          report.configured.length > 0 ? `set configs of ${report.configured.join(", ")}` : "",
        ].filter(Boolean);
        await this.#d.events.normal(target, "TopicsProvisioned", `Kafka topics: ${parts.join("; ")}`);
      }
      for (const name of [...report.refused, ...report.failed]) {
        const o = topics.get(name);
        this.#d.log.warn(
          { pipeline: key, topic: name, reason: o?.reason, err: o?.message },
          "topic not ready",
        );
        await this.#d.events.warning(target, o?.reason ?? "TopicNotReady", o?.message ?? name);
      }
      return { topics };
    } catch (err) {
      return failed(
        "KafkaUnavailable",
        `cannot manage the topics through the Kafka admin API at ${brokers}: ${(err as Error).message}; check spec.kafka.bootstrapServers and spec.kafka.authSecretRef`,
      );
    } finally {
      await admin?.close().catch(() => undefined);
    }
  }

  #cached(obj: KubeObject): KubernetesObject | undefined {
    return this.#d.children.get(obj.kind)?.get(obj.metadata.name, obj.metadata.namespace);
  }

  #owned(kind: string, namespace: string, pipeline: string): readonly KubernetesObject[] {
    const cache = this.#d.children.get(kind);
    if (!cache) return [];
    return cache
      .list(namespace)
      .filter(
        (o) =>
          o.metadata?.labels?.[PIPELINE_LABEL] === pipeline &&
          o.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY,
      );
  }

  /** The pipeline is gone: without a garbage collector its children would linger, so remove what it controlled. */
  async #cleanupDeleted(namespace: string, name: string): Promise<void> {
    try {
      await this.#d.custom.getNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace,
        plural: PLURAL,
        name,
      });
      return; // still exists: the cache is behind
    } catch (err) {
      if (httpStatus(err) !== 404) throw err;
    }
    for (const k of MANAGED_KINDS) {
      for (const o of this.#owned(k.kind, namespace, name)) {
        if (controllerUid(o) === undefined) continue;
        try {
          await this.#d.objects.delete({
            apiVersion: k.apiVersion,
            kind: k.kind,
            metadata: { name: o.metadata?.name, namespace },
          });
        } catch (err) {
          if (httpStatus(err) !== 404) throw err;
        }
      }
    }
  }

  async #writeStatus(raw: RawPipeline, status: AuctionPipeline["status"]): Promise<void> {
    const namespace = raw.metadata?.namespace ?? "";
    const name = raw.metadata?.name ?? "";
    try {
      await this.#d.custom.replaceNamespacedCustomObjectStatus({
        group: GROUP,
        version: VERSION,
        namespace,
        plural: PLURAL,
        name,
        body: { ...raw, status },
      });
    } catch (err) {
      // 409: the pipeline changed meanwhile; the informer event re-queues it.
      if (httpStatus(err) === 409)
        throw new Error(`status of ${namespace}/${name} changed concurrently; retrying`);
      if (httpStatus(err) === 404) return;
      throw err;
    }
  }

  async #writeFailure(raw: RawPipeline, reason: string, message: string): Promise<void> {
    const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
    const generation = raw.metadata?.generation ?? 0;
    const prev = raw.status?.conditions?.find((c) => c.type === "Ready");
    const status = {
      ...(raw.status ?? {}),
      observedGeneration: generation,
      phase: "Failed" as const,
      conditions: [
        {
          type: "Ready",
          status: "False" as const,
          reason,
          message: message.slice(0, 4096),
          lastTransitionTime: prev?.status === "False" ? prev.lastTransitionTime : now,
          observedGeneration: generation,
        },
        ...(raw.status?.conditions ?? []).filter((c) => c.type !== "Ready"),
      ],
    };
    if (statusChanged(raw.status, status)) await this.#writeStatus(raw, status);
  }
}

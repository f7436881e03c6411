/**
 * Wiring in controller-runtime's shape: informers (list+watch, periodic
 * resync) feed namespace/name keys of pipelines into a work queue; workers
 * reconcile one key at a time each; all of it runs only while this replica
 * holds the leader Lease.
 */
import { hostname } from "node:os";
import {
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type Informer,
  type KubeConfig,
  type KubernetesObject,
  KubernetesObjectApi,
  makeInformer,
  type ObjectCache,
  type V1OwnerReference,
} from "@kubernetes/client-node";
import { GROUP, PLURAL, VERSION } from "../../api/v1alpha1/types.ts";
import { MANAGED_BY, MANAGED_BY_LABEL, PIPELINE_LABEL } from "../../cdk8s/names.ts";
import type { Logger } from "../../lib/log.ts";
import { withSpan } from "../../lib/telemetry.ts";
import type { OperatorMetrics } from "../../processors/runtime/instrument.ts";
import { TerminalError } from "./errors.ts";
import { EventRecorder } from "./events.ts";
import { kafkajsTopicAdmin } from "./kafka-admin.ts";
import { collectionPath, MANAGED_KINDS } from "./kinds.ts";
import { LeaderElector } from "./leader.ts";
import { Reconciler } from "./reconciler.ts";
import type { TopicAdminFactory } from "./topics.ts";
import { WorkQueue } from "./workqueue.ts";

export interface ManagerOptions {
  readonly kubeConfig: KubeConfig;
  readonly log: Logger;
  /** Watch only this namespace. Default: all namespaces. */
  readonly namespace?: string;
  /** Leader-election Lease. */
  readonly leaseNamespace: string;
  readonly leaseName?: string;
  /** Owner of the Lease (deleted with it by the garbage collector). */
  readonly leaseOwner?: V1OwnerReference;
  /** Unique per replica. Default `<hostname>-<pid>-<random>`. */
  readonly identity?: string;
  readonly leaseDurationMs?: number;
  readonly renewDeadlineMs?: number;
  readonly retryPeriodMs?: number;
  /** Every pipeline is re-queued this often even without events. Default 5 minutes. */
  readonly resyncMs?: number;
  /** Keys reconciled in parallel (never the same key twice). Default 2. */
  readonly concurrency?: number;
  /** Backoff of failed reconciles. */
  readonly baseDelayMs?: number;
  readonly maxDelayMs?: number;
  /** Called when leadership is lost (the CLI exits so Kubernetes restarts the pod). */
  readonly onLostLeadership?: () => void;
  /** Reconcile count, errors, duration, queue depth and leadership (processors/runtime/instrument.ts). */
  readonly metrics?: OperatorMetrics;
  /** Kafka admin clients of the gavel topic provisioner. Default: kafkajs (`kafka-admin.ts`). */
  readonly topicAdmin?: TopicAdminFactory;
}

type Cache = Informer<KubernetesObject> & ObjectCache<KubernetesObject>;

export class Manager {
  readonly identity: string;
  readonly #options: ManagerOptions;
  readonly #log: Logger;
  readonly #elector: LeaderElector;
  #queue: WorkQueue | undefined;
  #informers: { name: string; informer: Cache }[] = [];
  #workers: Promise<void>[] = [];
  #resync: NodeJS.Timeout | undefined;
  #synced = false;
  #running = false;
  #reconciles = 0;

  constructor(opts: ManagerOptions) {
    this.#options = opts;
    this.identity = opts.identity ?? `${hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    this.#log = opts.log.child({ identity: this.identity });
    this.#elector = new LeaderElector(opts.kubeConfig.makeApiClient(CoordinationV1Api), this.#log, {
      namespace: opts.leaseNamespace,
      name: opts.leaseName ?? "gavel-operator",
      identity: this.identity,
      owner: opts.leaseOwner,
      ...(opts.leaseDurationMs ? { leaseDurationMs: opts.leaseDurationMs } : {}),
      ...(opts.renewDeadlineMs ? { renewDeadlineMs: opts.renewDeadlineMs } : {}),
      ...(opts.retryPeriodMs ? { retryPeriodMs: opts.retryPeriodMs } : {}),
      onStartedLeading: () => this.#startControllers(),
      onStoppedLeading: async () => {
        await this.#stopControllers();
        if (this.#running) opts.onLostLeadership?.();
      },
    });
    opts.metrics?.queueDepth.track({}, () => this.queueDepth);
    opts.metrics?.leader.track({}, () => (this.isLeader ? 1 : 0));
  }

  get isLeader(): boolean {
    return this.#elector.isLeader;
  }

  /** Keys waiting in the work queue (0 when not leading). */
  get queueDepth(): number {
    return this.#queue?.length ?? 0;
  }

  /** Reconciles finished since start (for health and tests). */
  get reconciles(): number {
    return this.#reconciles;
  }

  /** Liveness: not leading, or leading with a recent renewal. */
  healthy(): boolean {
    return !this.#elector.isLeader || this.#elector.sinceRenewMs < (this.#options.leaseDurationMs ?? 15_000);
  }

  /** Readiness: a standby is ready; a leader once its caches are synced. */
  ready(): boolean {
    return this.#running && (!this.#elector.isLeader || this.#synced);
  }

  /** Start campaigning for leadership; controllers run while leading. */
  start(): void {
    this.#running = true;
    this.#elector.start();
  }

  /**
   * Graceful stop: finish in-flight reconciles, stop watches and release the
   * Lease so a standby takes over at once. `releaseLease: false` leaves the
   * Lease to expire (what a crash looks like to the other replicas).
   */
  async stop(opts: { releaseLease?: boolean } = {}): Promise<void> {
    this.#running = false;
    await this.#elector.stop(opts.releaseLease ?? true);
    await this.#stopControllers();
  }

  async #startControllers(): Promise<void> {
    const kc = this.#options.kubeConfig;
    const objects = KubernetesObjectApi.makeApiClient(kc);
    const custom = kc.makeApiClient(CustomObjectsApi);
    const queue = new WorkQueue({
      ...(this.#options.baseDelayMs ? { baseDelayMs: this.#options.baseDelayMs } : {}),
      ...(this.#options.maxDelayMs ? { maxDelayMs: this.#options.maxDelayMs } : {}),
    });
    this.#queue = queue;
    const ns = this.#options.namespace;
    const enqueue = (o: KubernetesObject) => {
      if (o.metadata?.name && o.metadata.namespace) queue.add(`${o.metadata.namespace}/${o.metadata.name}`);
    };

    const pipelines = makeInformer<KubernetesObject>(
      kc,
      collectionPath({ apiVersion: `${GROUP}/${VERSION}`, resource: PLURAL }, ns),
      async () =>
        (ns
          ? await custom.listNamespacedCustomObject({
              group: GROUP,
              version: VERSION,
              namespace: ns,
              plural: PLURAL,
            })
          : await custom.listClusterCustomObject({
              group: GROUP,
              version: VERSION,
              plural: PLURAL,
            })) as never,
    );
    // Like controller-runtime's GenerationChanged/AnnotationChanged predicates: our own
    // status writes do not trigger another pass (the periodic resync still does).
    const seen = new Map<string, string>();
    const fingerprint = (o: KubernetesObject) =>
      JSON.stringify([
        o.metadata?.generation,
        o.metadata?.annotations,
        o.metadata?.labels,
        o.metadata?.deletionTimestamp,
      ]);
    const keyOf = (o: KubernetesObject) => `${o.metadata?.namespace}/${o.metadata?.name}`;
    pipelines.on("add", (o) => {
      seen.set(keyOf(o), fingerprint(o));
      enqueue(o);
    });
    pipelines.on("update", (o) => {
      const f = fingerprint(o);
      if (seen.get(keyOf(o)) === f) return;
      seen.set(keyOf(o), f);
      enqueue(o);
    });
    pipelines.on("delete", (o) => {
      seen.delete(keyOf(o));
      enqueue(o);
    });
    this.#informers = [{ name: "AuctionPipeline", informer: pipelines }];

    const children = new Map<string, ObjectCache<KubernetesObject>>();
    const selector = `${MANAGED_BY_LABEL}=${MANAGED_BY},${PIPELINE_LABEL}`;
    for (const k of MANAGED_KINDS) {
      const inf = makeInformer<KubernetesObject>(
        kc,
        collectionPath(k, ns),
        () =>
          objects.list(
            k.apiVersion,
            k.kind,
            ns,
            undefined,
            undefined,
            undefined,
            undefined,
            selector,
          ) as never,
        selector,
      );
      // A child changed or vanished: reconcile its pipeline (this is how drift is corrected).
      const toOwner = (o: KubernetesObject) => {
        const p = o.metadata?.labels?.[PIPELINE_LABEL];
        if (p && o.metadata?.namespace) queue.add(`${o.metadata.namespace}/${p}`);
      };
      // add: also at start-up, so children of a pipeline deleted while no operator ran are found.
      inf.on("add", toOwner);
      inf.on("update", toOwner);
      inf.on("delete", toOwner);
      children.set(k.kind, inf);
      this.#informers.push({ name: k.kind, informer: inf });
    }

    const reconciler = new Reconciler({
      objects,
      custom,
      pipelines,
      children,
      events: new EventRecorder(kc.makeApiClient(CoreV1Api), this.#log, this.identity),
      log: this.#log,
      topicAdmin: this.#options.topicAdmin ?? kafkajsTopicAdmin(this.#log),
    });

    // Start child caches first so the first reconciles see existing children.
    await Promise.all(this.#informers.slice(1).map((i) => this.#startInformer(i.name, i.informer)));
    await this.#startInformer("AuctionPipeline", pipelines);
    this.#synced = true;

    const concurrency = this.#options.concurrency ?? 2;
    this.#workers = Array.from({ length: concurrency }, () => this.#work(queue, reconciler));
    this.#resync = setInterval(() => {
      for (const p of pipelines.list()) enqueue(p);
    }, this.#options.resyncMs ?? 300_000);
    this.#resync.unref();
    this.#log.info({ namespace: ns ?? "(all)", concurrency }, "controllers started");
  }

  async #startInformer(name: string, informer: Cache): Promise<void> {
    let delay = 1000;
    informer.on("error", (err: unknown) => {
      if (!this.#synced && !this.#running) return;
      this.#log.warn({ informer: name, err: (err as Error)?.message }, "watch failed; restarting");
      const t = setTimeout(() => {
        if (this.#queue === undefined) return;
        informer.start().catch(() => undefined);
      }, delay);
      t.unref();
      delay = Math.min(delay * 2, 30_000);
    });
    informer.on("connect", () => {
      delay = 1000;
    });
    try {
      await informer.start();
    } catch (err) {
      // e.g. the Strimzi CRD is not installed yet: keep going, the error handler retries.
      this.#log.warn(
        { informer: name, err: (err as Error).message },
        "informer did not start; retrying in background",
      );
    }
  }

  async #work(queue: WorkQueue, reconciler: Reconciler): Promise<void> {
    for (;;) {
      const key = await queue.get();
      if (key === undefined) return;
      const started = Date.now();
      let result = "error";
      try {
        // One span per reconcile, made here rather than inside the business code.
        const [namespace = "", name = ""] = key.split("/");
        const res = await withSpan(
          "reconcile AuctionPipeline",
          { attributes: { "k8s.namespace.name": namespace, "gavel.pipeline": name } },
          () => reconciler.reconcile(key),
        );
        queue.forget(key);
        if (res.requeueAfterMs !== undefined) queue.addAfter(key, res.requeueAfterMs);
        result = res.requeueAfterMs !== undefined ? "requeue" : "success";
        this.#log.debug({ key, ms: Date.now() - started }, "reconciled");
      } catch (err) {
        this.#options.metrics?.errors.inc({ kind: err instanceof TerminalError ? "terminal" : "retriable" });
        if (err instanceof TerminalError) {
          queue.forget(key);
          this.#log.warn(
            { key, reason: err.reason, err: err.message },
            "reconcile failed (not retried until the spec changes)",
          );
        } else {
          const delay = queue.addRateLimited(key);
          this.#log.warn(
            { key, err: (err as Error).message, retryInMs: delay },
            "reconcile failed; retrying",
          );
        }
      } finally {
        this.#reconciles++;
        this.#options.metrics?.reconciles.inc({ result });
        this.#options.metrics?.duration.observe({ result }, (Date.now() - started) / 1000);
        queue.done(key);
      }
    }
  }

  async #stopControllers(): Promise<void> {
    if (this.#resync) clearInterval(this.#resync);
    this.#resync = undefined;
    const queue = this.#queue;
    this.#queue = undefined;
    this.#synced = false;
    if (queue) await queue.shutDown();
    await Promise.all(this.#workers);
    this.#workers = [];
    await Promise.all(this.#informers.map((i) => i.informer.stop()));
    this.#informers = [];
  }
}

/**
 * Leader election with a coordination.k8s.io Lease, as client-go does it: the
 * holder renews `renewTime` every retry period; others take over only after
 * `leaseDurationSeconds` without renewal. A leader that cannot renew within
 * the renew deadline stops acting before anyone else may start.
 */
import {
  type CoordinationV1Api,
  type V1Lease,
  V1MicroTime,
  type V1OwnerReference,
} from "@kubernetes/client-node";
import type { Logger } from "../../lib/log.ts";
import { httpStatus } from "./errors.ts";

export interface LeaderElectionOptions {
  readonly namespace: string;
  readonly name: string;
  readonly identity: string;
  /** Default 15 s. */
  readonly leaseDurationMs?: number;
  /** Default 10 s; must be below the lease duration. */
  readonly renewDeadlineMs?: number;
  /** Default 2 s. */
  readonly retryPeriodMs?: number;
  readonly onStartedLeading: () => void | Promise<void>;
  readonly onStoppedLeading: () => void | Promise<void>;
  /**
   * Owner of the Lease (the operator's Deployment): the garbage collector
   * deletes the Lease with it, so `helm uninstall` leaves no Lease behind,
   * even one re-created by a replica still shutting down.
   */
  readonly owner?: V1OwnerReference | undefined;
}

function time(v: unknown): number {
  if (v instanceof Date) return v.getTime();
  if (typeof v === "string") return Date.parse(v);
  return 0;
}

export class LeaderElector {
  readonly #api: CoordinationV1Api;
  readonly #options: Required<LeaderElectionOptions>;
  readonly #log: Logger;
  #leading = false;
  #lastRenew = 0;
  #stopped = false;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;

  constructor(api: CoordinationV1Api, log: Logger, opts: LeaderElectionOptions) {
    this.#api = api;
    this.#log = log;
    this.#options = {
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      ...opts,
      owner: opts.owner,
    } as Required<LeaderElectionOptions>;
    if (this.#options.renewDeadlineMs >= this.#options.leaseDurationMs)
      throw new Error("leader election: renewDeadline must be shorter than the lease duration");
  }

  get isLeader(): boolean {
    return this.#leading;
  }

  /** Milliseconds since the last successful renewal (Infinity when not leading). */
  get sinceRenewMs(): number {
    return this.#leading ? Date.now() - this.#lastRenew : Number.POSITIVE_INFINITY;
  }

  start(): void {
    this.#stopped = false;
    this.#loop = this.#run();
  }

  /** Stop campaigning; with `release`, hand the lease over at once (graceful shutdown). */
  async stop(release = true): Promise<void> {
    this.#stopped = true;
    this.#wake?.();
    await this.#loop;
    const wasLeading = this.#leading;
    if (this.#leading) {
      this.#leading = false;
      await this.#options.onStoppedLeading();
    }
    if (release && wasLeading) await this.#release();
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      let ok = false;
      try {
        ok = await this.#tryAcquireOrRenew();
      } catch (err) {
        this.#log.warn({ err: (err as Error).message }, "leader election: lease update failed");
      }
      if (this.#stopped) break;
      if (ok) {
        this.#lastRenew = Date.now();
        if (!this.#leading) {
          this.#leading = true;
          this.#log.info(
            { lease: `${this.#options.namespace}/${this.#options.name}`, identity: this.#options.identity },
            "became leader",
          );
          await this.#options.onStartedLeading();
        }
      } else if (this.#leading && Date.now() - this.#lastRenew > this.#options.renewDeadlineMs) {
        this.#leading = false;
        this.#log.error("leader election: could not renew the lease in time, stopping");
        await this.#options.onStoppedLeading();
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, this.#options.retryPeriodMs);
        this.#wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  async #tryAcquireOrRenew(): Promise<boolean> {
    const { namespace, name, identity } = this.#options;
    const now = new V1MicroTime();
    const durationS = Math.ceil(this.#options.leaseDurationMs / 1000);
    let lease: V1Lease;
    try {
      lease = await this.#api.readNamespacedLease({ name, namespace });
    } catch (err) {
      if (httpStatus(err) !== 404) throw err;
      try {
        await this.#api.createNamespacedLease({
          namespace,
          body: {
            metadata: {
              name,
              namespace,
              ...(this.#options.owner ? { ownerReferences: [this.#options.owner] } : {}),
            },
            spec: {
              holderIdentity: identity,
              leaseDurationSeconds: durationS,
              acquireTime: now,
              renewTime: now,
              leaseTransitions: 0,
            },
          },
        });
        return true;
      } catch (e) {
        if (httpStatus(e) === 409) return false;
        throw e;
      }
    }
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? "";
    const expired =
      holder === "" || time(spec.renewTime) + (spec.leaseDurationSeconds ?? durationS) * 1000 < Date.now();
    if (holder !== identity && !expired) return false;
    const owner = this.#options.owner;
    const owned = !owner || (lease.metadata?.ownerReferences ?? []).some((r) => r.uid === owner.uid);
    const next: V1Lease = {
      ...lease,
      // A Lease from before the owner was set (or of an earlier install) gets it now.
      ...(owned
        ? {}
        : {
            metadata: {
              ...lease.metadata,
              ownerReferences: [...(lease.metadata?.ownerReferences ?? []), owner],
            },
          }),
      spec: {
        ...spec,
        holderIdentity: identity,
        leaseDurationSeconds: durationS,
        renewTime: now,
        ...(holder === identity
          ? {}
          : { acquireTime: now, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 }),
      },
    };
    try {
      await this.#api.replaceNamespacedLease({ name, namespace, body: next });
      return true;
    } catch (err) {
      if (httpStatus(err) === 409) return false;
      throw err;
    }
  }

  async #release(): Promise<void> {
    const { namespace, name, identity } = this.#options;
    try {
      const lease = await this.#api.readNamespacedLease({ name, namespace });
      if (lease.spec?.holderIdentity !== identity) return;
      await this.#api.replaceNamespacedLease({
        name,
        namespace,
        body: { ...lease, spec: { ...lease.spec, holderIdentity: "", leaseDurationSeconds: 1 } },
      });
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, "leader election: could not release the lease");
    }
  }
}

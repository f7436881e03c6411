/**
 * Kubernetes Events on the pipeline, so `kubectl describe ap` tells the
 * story. Identical events within five minutes are recorded once (like
 * client-go's correlator) to keep resyncs from flooding the namespace.
 */
import { randomBytes } from "node:crypto";
import type { CoreV1Api } from "@kubernetes/client-node";
import { API_VERSION, KIND } from "../../api/v1alpha1/types.ts";
import type { Logger } from "../../lib/log.ts";

export interface EventTarget {
  readonly name: string;
  readonly namespace: string;
  readonly uid?: string;
}

export class EventRecorder {
  readonly #core: CoreV1Api;
  readonly #log: Logger;
  readonly #component: string;
  readonly #instance: string;
  readonly #recent = new Map<string, number>();

  constructor(core: CoreV1Api, log: Logger, instance: string, component = "gavel-operator") {
    this.#core = core;
    this.#log = log;
    this.#component = component;
    this.#instance = instance;
  }

  normal(target: EventTarget, reason: string, message: string): Promise<void> {
    return this.#record(target, "Normal", reason, message);
  }

  warning(target: EventTarget, reason: string, message: string): Promise<void> {
    return this.#record(target, "Warning", reason, message);
  }

  async #record(
    target: EventTarget,
    type: "Normal" | "Warning",
    reason: string,
    message: string,
  ): Promise<void> {
    const key = `${target.namespace}/${target.name}/${target.uid}/${type}/${reason}/${message}`;
    const now = Date.now();
    const last = this.#recent.get(key);
    if (last !== undefined && now - last < 300_000) return;
    this.#recent.set(key, now);
    if (this.#recent.size > 5000)
      for (const k of [...this.#recent.keys()].slice(0, 1000)) this.#recent.delete(k);
    const ts = new Date();
    try {
      await this.#core.createNamespacedEvent({
        namespace: target.namespace,
        body: {
          metadata: { name: `${target.name}.${randomBytes(8).toString("hex")}`, namespace: target.namespace },
          involvedObject: {
            apiVersion: API_VERSION,
            kind: KIND,
            name: target.name,
            namespace: target.namespace,
            ...(target.uid ? { uid: target.uid } : {}),
          },
          type,
          reason,
          message: message.slice(0, 1024),
          count: 1,
          firstTimestamp: ts,
          lastTimestamp: ts,
          source: { component: this.#component },
          reportingComponent: this.#component,
          reportingInstance: this.#instance,
        },
      });
    } catch (err) {
      // Events are best effort: never fail a reconcile over one.
      this.#log.warn({ err: (err as Error).message, reason }, "could not record event");
    }
  }
}

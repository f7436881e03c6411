/**
 * Keeps a bid-processor's fraud models current: lists
 * `<prefix>models/fraud/` at start and every `pollSeconds`, loads versions
 * it has not seen (the newest `keep`), and refuses, with a log line and a
 * metric, any object that is not a valid model. A refused or unreadable
 * model never stops the processor: bids are scored by the models already
 * loaded, or by the rules alone.
 */
import type { Logger } from "../../lib/log.ts";
import type { Registry } from "../runtime/metrics.ts";
import { decodeModel, type FraudModels, modelsPrefix } from "./model.ts";
import type { ModelStore } from "./store.ts";

export interface ModelWatcherOptions {
  readonly store: ModelStore;
  /** The pipeline's S3 prefix (empty or ending in `/`). */
  readonly prefix: string;
  readonly models: FraudModels;
  readonly logger: Logger;
  readonly metrics?: Registry;
  /**
   * Newest versions to load at start. Default 10: with the daily rollup more
   * than the bids topic's default retention (7 days), so a backlog reaching
   * back to the oldest record still in Kafka finds the model of its time, as
   * a replica that has run all along has it (loaded models are kept).
   */
  readonly keep?: number;
  /** Wall clock (tests). */
  readonly now?: () => number;
}

export interface RefreshResult {
  readonly loaded: readonly string[];
  readonly refused: readonly { readonly key: string; readonly detail: string }[];
  /** Set when the store could not be listed. */
  readonly error?: string;
}

export class ModelWatcher {
  readonly #options: ModelWatcherOptions;
  /** Keys refused once: not read again (a version's object is never rewritten). */
  readonly #refused = new Map<string, string>();
  #timer?: NodeJS.Timeout;
  #running?: Promise<RefreshResult>;
  #saidNone = false;
  /** Set once bids are being scored (`consuming()`): models found later arrived late if already active. */
  #consumingSince?: number;
  readonly #metrics;

  constructor(o: ModelWatcherOptions) {
    this.#options = o;
    const m = o.metrics;
    this.#metrics = m && {
      loads: m.counter(
        "fraud_model_loads_total",
        "Fraud model objects read, by result: loaded, refused (not a valid model), error (store unreachable).",
      ),
      models: m.gauge("fraud_models_loaded", "Fraud models loaded (the newest active one scores bids)."),
    };
    this.#metrics?.models.track({}, () => o.models.size);
  }

  /** Looks for new models once (at most one look at a time). */
  refresh(): Promise<RefreshResult> {
    this.#running ??= this.#refresh().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #refresh(): Promise<RefreshResult> {
    const { store, prefix, models, logger } = this.#options;
    const where = `${store.location}${modelsPrefix(prefix)}`;
    let keys: string[];
    try {
      keys = (await store.list(modelsPrefix(prefix))).filter((k) => k.endsWith(".json"));
    } catch (err) {
      this.#metrics?.loads.inc({ result: "error" });
      const error = `cannot list fraud models at ${where}: ${(err as Error).message}`;
      logger.warn({ err }, `${error}; scoring with ${models.size} loaded model(s) (rules alone if none)`);
      return { loaded: [], refused: [], error };
    }
    const versionOf = (k: string) => k.slice(k.lastIndexOf("/") + 1, -".json".length);
    const wanted = keys
      .filter((k) => !models.has(versionOf(k)) && !this.#refused.has(k))
      .slice(-(this.#options.keep ?? 10));
    const loaded: string[] = [];
    const refused: { key: string; detail: string }[] = [];
    for (const key of wanted) {
      let text: string;
      try {
        text = await store.get(key);
      } catch (err) {
        this.#metrics?.loads.inc({ result: "error" });
        logger.warn({ err, key }, `cannot read fraud model ${store.location}${key}; will try again`);
        continue;
      }
      let d: ReturnType<typeof decodeModel>;
      try {
        d = decodeModel(text);
      } catch (err) {
        // decodeModel refuses by value; anything thrown is refused the same way, never fatal.
        d = { ok: false, detail: `cannot be read: ${(err as Error).message}` };
      }
      if (!d.ok) {
        this.#refused.set(key, d.detail);
        refused.push({ key, detail: d.detail });
        this.#metrics?.loads.inc({ result: "refused" });
        logger.error(
          { key },
          `fraud model ${store.location}${key} refused: ${d.detail}; bids are scored without it (retrain with \`gavel fraud train\`)`,
        );
        continue;
      }
      if (d.value.model.version !== versionOf(key)) {
        const detail = `its version ${d.value.model.version} does not match its name`;
        this.#refused.set(key, detail);
        refused.push({ key, detail });
        this.#metrics?.loads.inc({ result: "refused" });
        logger.error({ key }, `fraud model ${store.location}${key} refused: ${detail}`);
        continue;
      }
      models.add(d.value);
      loaded.push(d.value.model.version);
      this.#metrics?.loads.inc({ result: "loaded" });
      // Before consuming, models already active are expected (they were
      // before the restart too); one loaded after bids were scored is late.
      const now = (this.#options.now ?? Date.now)();
      if (this.#consumingSince !== undefined && d.value.activeFromMs < now)
        logger.warn(
          { version: d.value.model.version, activeFrom: d.value.model.activeFrom },
          `fraud model ${d.value.model.version} loaded after it became active (${d.value.model.activeFrom}): bids that arrived since were scored without it here, a replay would score them with it (raise spec.fraud.model.activationDelaySeconds if this repeats)`,
        );
      logger.info(
        { version: d.value.model.version, activeFrom: d.value.model.activeFrom, rows: d.value.model.rows },
        `fraud model ${d.value.model.version} loaded; scores bids arriving from ${d.value.model.activeFrom}`,
      );
    }
    if (models.size === 0 && !this.#saidNone) {
      this.#saidNone = true;
      logger.info(`no usable fraud model under ${where} yet: scoring with the rules alone`);
    }
    return { loaded, refused };
  }

  /**
   * The first look, before anything is scored: retried until the store
   * answers or `timeoutMs` passes. True when the store was listed (whatever
   * it held).
   */
  async initial(timeoutMs: number, retryMs = 1000): Promise<boolean> {
    const end = (this.#options.now ?? Date.now)() + timeoutMs;
    for (;;) {
      const left = end - (this.#options.now ?? Date.now)();
      if (left <= 0) return false;
      let timer: NodeJS.Timeout | undefined;
      const r = await Promise.race([
        this.refresh(),
        new Promise<undefined>((done) => {
          timer = setTimeout(() => done(undefined), left);
        }),
      ]);
      clearTimeout(timer);
      if (r && r.error === undefined) return true;
      if (!r) return false;
      await new Promise((done) => setTimeout(done, Math.min(retryMs, Math.max(0, end - Date.now()))));
    }
  }

  /** From now on bids are scored: a model loaded later that is already active is reported as late. */
  consuming(): void {
    this.#consumingSince ??= (this.#options.now ?? Date.now)();
  }

  /** Refreshes every `intervalMs` until stopped. */
  start(intervalMs: number): void {
    this.stop();
    this.#timer = setInterval(() => void this.refresh(), intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running?.catch(() => undefined);
  }
}

import { s3Prefix } from "../../api/v1alpha1/pipeline.ts";
import { FraudModels } from "../fraud/model.ts";
import { s3ModelStore } from "../fraud/store.ts";
import { ModelWatcher } from "../fraud/watcher.ts";
import { normalizePrefix } from "../rollup/lake.ts";
import { s3ClientFor } from "../runtime/config.ts";
import type { ProcessorSpec } from "../runtime/run.ts";
import { BidProcessor } from "./processor.ts";

/** Longest the first look for fraud models may delay the start. */
const MODEL_LOAD_TIMEOUT_MS = 20_000;

/**
 * `gavel processor bid-processor`: a transform, the pure `BidProcessorCore`
 * per partition with its Kafka-transaction sink, scoring with the trained
 * fraud models it keeps current.
 */
export const bidProcessor: ProcessorSpec = {
  name: "bid-processor",
  kind: "transform",
  async build({ cfg, logger, metrics, transport, admin, defer }) {
    const t = await transport();
    const a = await admin();
    // Fraud models: loaded before the first bid is scored, so a restart scores
    // as the run before it (a model applies by record time, docs/fraud.md).
    const models = new FraudModels();
    const watcher = new ModelWatcher({
      store: s3ModelStore(s3ClientFor(cfg), cfg.conn.s3Bucket ?? cfg.pipeline.spec.storage.s3.bucket),
      prefix: normalizePrefix(s3Prefix(cfg.pipeline)),
      models,
      logger,
      metrics,
    });
    defer(() => watcher.stop());
    // Bounded: an unreachable store must not keep the processor from starting.
    if (!(await watcher.initial(MODEL_LOAD_TIMEOUT_MS)))
      logger.warn(
        `fraud models could not be listed within ${MODEL_LOAD_TIMEOUT_MS / 1000}s of start: scoring with the rules alone until the store answers (a model loaded then that is already active is logged as late)`,
      );
    watcher.consuming();
    watcher.start(cfg.pipeline.spec.fraud.model.pollSeconds * 1000);
    return new BidProcessor({
      models,
      transport: t,
      admin: a,
      pipeline: cfg.pipeline,
      topics: cfg.topics,
      logger,
      metrics,
    });
  },
};

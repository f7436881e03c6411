import { envNumber } from "../../api/env.ts";
import { type AuctionPipeline, allTopics, s3Prefix } from "../../api/v1alpha1/pipeline.ts";
import { s3ClientFor } from "../runtime/config.ts";
import type { ProcessorSpec } from "../runtime/run.ts";
import { BronzeArchiver } from "./archiver.ts";

/** The topics bronze keeps: every topic of the pipeline but the extra ones. */
export function archivedTopics(pipeline: AuctionPipeline): string[] {
  return allTopics(pipeline)
    .filter((t) => !t.key.startsWith("extra:"))
    .map((t) => t.name);
}

const positive = (n: number) => Number.isInteger(n) && n > 0;

/** `gavel processor bronze-archiver`: a sink into S3, one object per offset range and hour. */
export const bronzeArchiver: ProcessorSpec = {
  name: "bronze-archiver",
  kind: "sink",
  async build({ cfg, env, logger, metrics, transport, admin }) {
    return new BronzeArchiver({
      transport: await transport(),
      admin: await admin(),
      s3: s3ClientFor(cfg),
      bucket: cfg.conn.s3Bucket ?? cfg.pipeline.spec.storage.s3.bucket,
      prefix: s3Prefix(cfg.pipeline),
      topics: archivedTopics(cfg.pipeline),
      groupId: `${cfg.pipeline.metadata.name}.bronze-archiver`,
      logger,
      metrics,
      maxAgeMs: envNumber("bronzeMaxAgeMs", env, positive, "a positive whole number of ms"),
      maxRecords: envNumber("bronzeMaxRecords", env, positive, "a positive whole number"),
    });
  },
};

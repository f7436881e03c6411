import { hostname } from "node:os";
import { S3Client } from "@aws-sdk/client-s3";
import { envNumber, envValue } from "../../api/env.ts";
import { type AuctionPipeline, loadPipelineFile, topicNames } from "../../api/v1alpha1/pipeline.ts";
import { type ConnectionConfig, readConnectionConfig, requireEnv } from "../../lib/config.ts";

/** Everything a processor needs to start: the pipeline spec and the connection settings. */
export interface ProcessorConfig {
  readonly pipeline: AuctionPipeline;
  readonly topics: ReturnType<typeof topicNames>;
  readonly conn: ConnectionConfig;
  /** Stable id of this replica (pod name), used in client ids and logs. */
  readonly instanceId: string;
  /** Port of the HTTP server (health, metrics and, for ingest, the API). */
  readonly port: number;
  readonly host: string;
}

/** The settings of every processor (api/env.ts: GAVEL_HTTP_PORT, GAVEL_HTTP_HOST, GAVEL_INSTANCE_ID, POD_NAME). */
export function processorConfigFrom(
  pipeline: AuctionPipeline,
  env: NodeJS.ProcessEnv = process.env,
): ProcessorConfig {
  const port = envNumber(
    "httpPort",
    env,
    (n) => Number.isInteger(n) && n >= 0 && n <= 65535,
    "a port number 0..65535",
  );
  return {
    pipeline,
    topics: topicNames(pipeline),
    conn: readConnectionConfig(env),
    instanceId: envValue("instanceId", env) ?? envValue("podName", env) ?? `${hostname()}-${process.pid}`,
    port,
    host: envValue("httpHost", env),
  };
}

export async function loadProcessorConfig(
  file: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ProcessorConfig> {
  return processorConfigFrom(await loadPipelineFile(file), env);
}

export function kafkaBrokers(cfg: ProcessorConfig): string {
  return requireEnv(cfg.conn, "kafkaBootstrapServers");
}

/** The S3 client of a processor: connection settings first, then the pipeline's storage.s3. */
export function s3ClientFor(cfg: ProcessorConfig): S3Client {
  const c = cfg.conn;
  const s3 = cfg.pipeline.spec.storage.s3;
  return new S3Client({
    endpoint: c.s3Endpoint ?? s3.endpoint,
    region: c.s3Region ?? s3.region,
    forcePathStyle: true,
    ...(c.awsAccessKeyId && c.awsSecretAccessKey
      ? { credentials: { accessKeyId: c.awsAccessKeyId, secretAccessKey: c.awsSecretAccessKey } }
      : {}),
  });
}

import { hostname } from "node:os";
import { S3Client } from "@aws-sdk/client-s3";
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

/** Processor-specific environment names beyond lib/config.ts. */
export const PROCESSOR_ENV = {
  /** HTTP port (default 8080). */
  port: "GAVEL_HTTP_PORT",
  /** Listen address (default 0.0.0.0). */
  host: "GAVEL_HTTP_HOST",
  /** Replica id (default: POD_NAME, else hostname-pid). */
  instance: "GAVEL_INSTANCE_ID",
} as const;

export function processorConfigFrom(
  pipeline: AuctionPipeline,
  env: NodeJS.ProcessEnv = process.env,
  defaults: { port?: number } = {},
): ProcessorConfig {
  const port = Number(env[PROCESSOR_ENV.port] ?? defaults.port ?? 8080);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`${PROCESSOR_ENV.port} must be a port number 0..65535, got ${env[PROCESSOR_ENV.port]}`);
  return {
    pipeline,
    topics: topicNames(pipeline),
    conn: readConnectionConfig(env),
    instanceId: env[PROCESSOR_ENV.instance] || env.POD_NAME || `${hostname()}-${process.pid}`,
    port,
    host: env[PROCESSOR_ENV.host] || "0.0.0.0",
  };
}

export async function loadProcessorConfig(
  file: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ProcessorConfig> {
  return processorConfigFrom(await loadPipelineFile(file), env);
}

export function kafkaBrokers(cfg: ProcessorConfig): string {
  return requireEnv(cfg.conn, "kafkaBootstrapServers", "KAFKA_BOOTSTRAP_SERVERS");
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

import { readFile } from "node:fs/promises";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import type { ConnectionConfig } from "../../lib/config.ts";

/** Where gold Parquet files go: `s3://<bucket>/<prefix>gold/<table>/day=<day>/part-0.parquet`. */
export interface GoldLake {
  readonly bucket: string;
  /** Key prefix, empty or ending with `/` (the pipeline's `spec.storage.s3.prefix`). */
  readonly prefix: string;
  put(key: string, file: string): Promise<void>;
}

export function normalizePrefix(prefix: string | undefined): string {
  const p = (prefix ?? "").replace(/^\/+/, "");
  return p === "" || p.endsWith("/") ? p : `${p}/`;
}

/** Object key of one gold table's Parquet file for a day (Hive-style `day=` partition). */
export function goldObjectKey(prefix: string, table: string, day: string): string {
  return `${normalizePrefix(prefix)}gold/${table}/day=${day}/part-0.parquet`;
}

export function s3ClientFromConfig(cfg: ConnectionConfig): S3Client {
  return new S3Client({
    region: cfg.s3Region,
    ...(cfg.s3Endpoint ? { endpoint: cfg.s3Endpoint, forcePathStyle: true } : {}),
    ...(cfg.awsAccessKeyId && cfg.awsSecretAccessKey
      ? { credentials: { accessKeyId: cfg.awsAccessKeyId, secretAccessKey: cfg.awsSecretAccessKey } }
      : {}),
  });
}

/** A GoldLake on S3; PutObject replaces a key atomically, so a re-run rewrites the same objects. */
export function s3Lake(client: S3Client, bucket: string, prefix: string | undefined): GoldLake {
  return {
    bucket,
    prefix: normalizePrefix(prefix),
    async put(key, file) {
      const body = await readFile(file);
      await client.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: body,
          ContentType: "application/vnd.apache.parquet",
        }),
      );
    },
  };
}

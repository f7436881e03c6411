/**
 * Where fraud models live: objects under `<prefix>models/fraud/` of the
 * pipeline's bucket (or a local folder, as the gold lake has one). The
 * trainer puts, bid-processors list and get.
 */
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { type FolderObjectStore, folderObjectStore } from "../storage/objects.ts";

export interface ModelStore {
  /** `s3://bucket/` or a folder path, for messages and status. */
  readonly location: string;
  /** Keys under `prefix`, sorted. */
  list(prefix: string): Promise<string[]>;
  get(key: string): Promise<string>;
  put(key: string, body: string): Promise<void>;
}

export function s3ModelStore(client: S3Client, bucket: string): ModelStore {
  return {
    location: `s3://${bucket}/`,
    async list(prefix) {
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const r = await client.send(
          new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
        );
        for (const o of r.Contents ?? []) if (o.Key) keys.push(o.Key);
        token = r.IsTruncated ? r.NextContinuationToken : undefined;
      } while (token);
      return keys.sort();
    },
    async get(key) {
      const r = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      if (!r.Body) throw new Error(`s3://${bucket}/${key} has no body`);
      return r.Body.transformToString("utf8");
    },
    async put(key, body) {
      await client.send(
        new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: "application/json" }),
      );
    },
  };
}

export function folderModelStore(root: string | FolderObjectStore): ModelStore {
  const f = typeof root === "string" ? folderObjectStore(root) : root;
  return {
    location: f.location,
    list: async (prefix) => (await f.list(prefix)).map((o) => o.key),
    get: async (key) => (await f.get(key)).toString("utf8"),
    put: (key, body) => f.put(key, Buffer.from(body, "utf8"), { contentType: "application/json" }),
  };
}

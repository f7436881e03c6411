/**
 * The narrow object-store interface of the bronze archiver and the gold lake:
 * put an object under a key, atomically (readers see the old object or the
 * new one, never half). Two implementations: S3 (PutObject, what runs in a
 * cluster) and a local folder (what `gavel dev` uses when no S3 is
 * configured), so the processors' code is the same in both.
 */
import { mkdir, readdir, readFile, rename, stat, writeFile } from "node:fs/promises";
import { dirname, join, relative, resolve, sep } from "node:path";
import { PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import type { GoldLake } from "../rollup/lake.ts";
import { normalizePrefix } from "../rollup/lake.ts";

export interface PutOptions {
  readonly contentType?: string;
  readonly contentEncoding?: string;
}

export interface ObjectStore {
  /** Where objects go, for messages: `s3://bucket/` or an absolute folder path. */
  readonly location: string;
  /** Writes (or replaces) the object at `key`. */
  put(key: string, body: Uint8Array, opts?: PutOptions): Promise<void>;
}

/** Objects in an S3 bucket (PutObject replaces a key atomically). */
export function s3ObjectStore(client: S3Client, bucket: string): ObjectStore {
  return {
    location: `s3://${bucket}/`,
    async put(key, body, opts = {}) {
      await client.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: body,
          ...(opts.contentType ? { ContentType: opts.contentType } : {}),
          ...(opts.contentEncoding ? { ContentEncoding: opts.contentEncoding } : {}),
        }),
      );
    },
  };
}

/** A folder whose files play the objects: key `a/b/c.gz` is `<root>/a/b/c.gz`. */
export interface FolderObjectStore extends ObjectStore {
  readonly root: string;
  /** Every key under `prefix` with its size, sorted. */
  list(prefix?: string): Promise<{ key: string; size: number }[]>;
  get(key: string): Promise<Buffer>;
}

export function folderObjectStore(root: string): FolderObjectStore {
  const base = resolve(root);
  const pathOf = (key: string) => {
    const p = resolve(base, key);
    if (p !== base && !p.startsWith(base + sep)) throw new Error(`object key ${key} escapes ${base}`);
    return p;
  };
  let seq = 0;
  return {
    root: base,
    location: base,
    async put(key, body) {
      const p = pathOf(key);
      await mkdir(dirname(p), { recursive: true });
      // Write then rename: a reader sees the old file or the new one, like PutObject.
      const tmp = `${p}.tmp-${process.pid}-${seq++}`;
      await writeFile(tmp, body);
      await rename(tmp, p);
    },
    async get(key) {
      return readFile(pathOf(key));
    },
    async list(prefix = "") {
      const out: { key: string; size: number }[] = [];
      const walk = async (dir: string): Promise<void> => {
        let names: string[];
        try {
          names = await readdir(dir);
        } catch {
          return;
        }
        for (const n of names) {
          const p = join(dir, n);
          const s = await stat(p);
          if (s.isDirectory()) await walk(p);
          else if (!n.includes(".tmp-")) {
            const key = relative(base, p).split(sep).join("/");
            if (key.startsWith(prefix)) out.push({ key, size: s.size });
          }
        }
      };
      await walk(base);
      return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    },
  };
}

/** The rollup's Parquet destination on any object store. */
export function goldLakeOn(store: ObjectStore, prefix: string | undefined): GoldLake {
  return {
    bucket: store.location,
    prefix: normalizePrefix(prefix),
    async put(key, file) {
      await store.put(key, await readFile(file), { contentType: "application/vnd.apache.parquet" });
    },
  };
}

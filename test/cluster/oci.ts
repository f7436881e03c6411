/**
 * Packs a root filesystem folder as a single-layer OCI image archive that
 * `ctr -n k8s.io images import` accepts: no Docker, no base image, no
 * registry. GNU tar writes the layer reproducibly (sorted, uid/gid 0, mtime
 * 0), so the same tree gives the same digests; this file writes the config,
 * manifest and index around it.
 *
 *   node test/cluster/oci.ts --rootfs DIR --ref NAME:TAG --out FILE.tar
 *        [--entrypoint JSON] [--cmd JSON] [--env K=V]... [--user U] [--workdir D] [--label K=V]...
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  createReadStream,
  mkdirSync,
  mkdtempSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";

export interface ImageConfig {
  rootfs: string;
  ref: string;
  out: string;
  entrypoint?: string[];
  cmd?: string[];
  env?: string[];
  user?: string;
  workdir?: string;
  labels?: Record<string, string>;
}

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { stdio: ["ignore", "inherit", "inherit"] });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.status ?? r.signal})`);
}

function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash("sha256");
    createReadStream(file)
      .on("data", (c) => h.update(c))
      .on("error", reject)
      .on("end", () => resolve(h.digest("hex")));
  });
}

const sha256 = (b: Buffer): string => createHash("sha256").update(b).digest("hex");

async function packImage(c: ImageConfig): Promise<{ manifestDigest: string; layerBytes: number }> {
  const work = mkdtempSync(join(dirname(c.out), ".oci-"));
  try {
    const blobs = join(work, "blobs", "sha256");
    mkdirSync(blobs, { recursive: true });
    const layer = join(work, "layer.tar");
    run("tar", [
      "--sort=name",
      "--owner=0",
      "--group=0",
      "--numeric-owner",
      "--mtime=@0",
      "--format=posix",
      "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime",
      "-C",
      c.rootfs,
      "-cf",
      layer,
      ".",
    ]);
    const diffId = await sha256File(layer);
    // gzip -n: no name or timestamp in the header (reproducible); -1: fast.
    run("gzip", ["-n", "-1", layer]);
    const layerGz = `${layer}.gz`;
    const layerDigest = await sha256File(layerGz);
    const layerSize = statSync(layerGz).size;
    renameSync(layerGz, join(blobs, layerDigest));

    const env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", ...(c.env ?? [])];
    const config = {
      architecture: "amd64",
      os: "linux",
      created: "1970-01-01T00:00:00Z",
      config: {
        Env: env,
        WorkingDir: c.workdir ?? "/",
        ...(c.entrypoint ? { Entrypoint: c.entrypoint } : {}),
        ...(c.cmd ? { Cmd: c.cmd } : {}),
        ...(c.user ? { User: c.user } : {}),
        ...(c.labels ? { Labels: c.labels } : {}),
      },
      rootfs: { type: "layers", diff_ids: [`sha256:${diffId}`] },
      history: [{ created: "1970-01-01T00:00:00Z", created_by: "test/cluster/oci.ts" }],
    };
    const configB = Buffer.from(JSON.stringify(config));
    writeFileSync(join(blobs, sha256(configB)), configB);
    const manifest = {
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: {
        mediaType: "application/vnd.oci.image.config.v1+json",
        digest: `sha256:${sha256(configB)}`,
        size: configB.length,
      },
      layers: [
        {
          mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
          digest: `sha256:${layerDigest}`,
          size: layerSize,
        },
      ],
    };
    const manifestB = Buffer.from(JSON.stringify(manifest));
    const manifestDigest = sha256(manifestB);
    writeFileSync(join(blobs, manifestDigest), manifestB);
    const index = {
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [
        {
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          digest: `sha256:${manifestDigest}`,
          size: manifestB.length,
          platform: { architecture: "amd64", os: "linux" },
          // containerd names the imported image after this annotation.
          annotations: {
            "io.containerd.image.name": c.ref,
            "org.opencontainers.image.ref.name": c.ref.slice(c.ref.lastIndexOf(":") + 1),
          },
        },
      ],
    };
    writeFileSync(join(work, "index.json"), JSON.stringify(index));
    writeFileSync(join(work, "oci-layout"), '{"imageLayoutVersion":"1.0.0"}');
    run("tar", ["-C", work, "-cf", c.out, "oci-layout", "index.json", "blobs"]);
    return {
      manifestDigest: `sha256:${manifestDigest}`,
      layerBytes: statSync(join(blobs, layerDigest)).size,
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function keyValues(list: string[] | undefined): Record<string, string> | undefined {
  if (!list || list.length === 0) return undefined;
  return Object.fromEntries(list.map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      rootfs: { type: "string" },
      ref: { type: "string" },
      out: { type: "string" },
      entrypoint: { type: "string" },
      cmd: { type: "string" },
      env: { type: "string", multiple: true },
      user: { type: "string" },
      workdir: { type: "string" },
      label: { type: "string", multiple: true },
    },
  });
  if (!values.rootfs || !values.ref || !values.out) {
    process.stderr.write("usage: oci.ts --rootfs DIR --ref NAME:TAG --out FILE.tar [options]\n");
    process.exit(2);
  }
  const r = await packImage({
    rootfs: values.rootfs,
    ref: values.ref,
    out: values.out,
    entrypoint: values.entrypoint ? (JSON.parse(values.entrypoint) as string[]) : undefined,
    cmd: values.cmd ? (JSON.parse(values.cmd) as string[]) : undefined,
    env: values.env,
    user: values.user,
    workdir: values.workdir,
    labels: keyValues(values.label),
  });
  process.stdout.write(
    `${values.out}: ${values.ref} ${r.manifestDigest} (${(r.layerBytes / 1e6).toFixed(0)} MB layer)\n`,
  );
}

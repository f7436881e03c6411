import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * The test environment's certificates (openssl only, nothing downloaded): a
 * CA per purpose and server certificates it signs, for the Kafka SASL_SSL
 * listener and PostgreSQL's TLS. Files are kept once made, so a restart keeps
 * the identities clients already trust.
 */

export interface CertFiles {
  /** PEM certificate. */
  readonly crt: string;
  /** PEM private key (PKCS#8, unencrypted), mode 0600. */
  readonly key: string;
}

function openssl(args: readonly string[]): void {
  const r = spawnSync("openssl", args, { encoding: "utf8", stdio: ["ignore", "ignore", "pipe"] });
  if (r.error)
    throw new Error(`openssl not found (needed for the test environment's certificates): ${r.error.message}`);
  if (r.status !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr.trim()}`);
}

/** The files `<dir>/<name>.crt|key` (the folder made), and whether both exist: then they are kept. */
function certFiles(dir: string, name: string): { files: CertFiles; made: boolean } {
  mkdirSync(dir, { recursive: true });
  const files = { crt: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
  return { files, made: existsSync(files.crt) && existsSync(files.key) };
}

/** `openssl req` arguments for a new unencrypted RSA key written to `key`, the request (or certificate) to `out`. */
const newKey = (key: string, out: string) => ["-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", out];

/** A self-signed CA `<dir>/<name>.crt|key` (kept when it exists). */
export function ensureCa(dir: string, name: string, cn: string): CertFiles {
  const { files, made } = certFiles(dir, name);
  if (made) return files;
  openssl([
    "req",
    "-x509",
    ...newKey(files.key, files.crt),
    "-days",
    "3650",
    "-subj",
    `/CN=${cn}`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
  ]);
  chmodSync(files.key, 0o600);
  return files;
}

export interface ServerCertOptions {
  readonly cn: string;
  /** subjectAltName, e.g. `IP:127.0.0.1,DNS:localhost`. */
  readonly san: string;
  /** Validity in days; negative makes a certificate that has already expired (for refusal tests). Default 3650. */
  readonly days?: number;
}

/** A server certificate `<dir>/<name>.crt|key` signed by `ca` (kept when it exists). */
export function ensureServerCert(dir: string, name: string, ca: CertFiles, o: ServerCertOptions): CertFiles {
  const { files, made } = certFiles(dir, name);
  if (made) return files;
  const csr = join(dir, `${name}.csr`);
  const ext = join(dir, `${name}.ext`);
  openssl(["req", ...newKey(files.key, csr), "-subj", `/CN=${o.cn}`]);
  writeFileSync(
    ext,
    [
      "basicConstraints=CA:FALSE",
      "keyUsage=critical,digitalSignature,keyEncipherment",
      "extendedKeyUsage=serverAuth",
      `subjectAltName=${o.san}`,
      "",
    ].join("\n"),
  );
  openssl([
    "x509",
    "-req",
    "-in",
    csr,
    "-CA",
    ca.crt,
    "-CAkey",
    ca.key,
    "-CAcreateserial",
    "-out",
    files.crt,
    "-days",
    String(o.days ?? 3650),
    "-extfile",
    ext,
  ]);
  rmSync(csr, { force: true });
  rmSync(ext, { force: true });
  chmodSync(files.key, 0o600);
  return files;
}

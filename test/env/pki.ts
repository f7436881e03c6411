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

/** A self-signed CA `<dir>/<name>.crt|key` (kept when it exists). */
export function ensureCa(dir: string, name: string, cn: string): CertFiles {
  mkdirSync(dir, { recursive: true });
  const files = { crt: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
  if (existsSync(files.crt) && existsSync(files.key)) return files;
  openssl([
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    files.key,
    "-out",
    files.crt,
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
  mkdirSync(dir, { recursive: true });
  const files = { crt: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
  if (existsSync(files.crt) && existsSync(files.key)) return files;
  const csr = join(dir, `${name}.csr`);
  const ext = join(dir, `${name}.ext`);
  openssl([
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    files.key,
    "-out",
    csr,
    "-subj",
    `/CN=${o.cn}`,
  ]);
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

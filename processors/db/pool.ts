import { readFileSync } from "node:fs";
import pg from "pg";
import { ProcessorError } from "../runtime/retry.ts";

/**
 * Every PostgreSQL pool Gavel opens from `DATABASE_URL` (migrate,
 * silver-writer, rollup, fraud training, dev) comes from here.
 *
 * TLS is what node-postgres reads from the URL (pg-connection-string 2.x):
 * `sslmode=verify-full&sslrootcert=FILE` encrypts, trusts only the CA in FILE
 * and checks that the URL's host is in the server's certificate; without
 * `sslrootcert` Node.js's bundled public CAs are trusted. Unlike libpq,
 * `prefer`, `require` and `verify-ca` mean `verify-full` too (never a
 * plaintext fallback, never an unchecked certificate); only the pg-specific
 * `sslmode=no-verify` (or `uselibpqcompat=true`) weakens that. What this
 * adds: an unreadable `sslrootcert` is refused before connecting, and a
 * refused certificate says that it is PostgreSQL's and is not retried.
 */
export function openPool(
  url: string,
  options: Omit<pg.PoolConfig, "connectionString" | "Client"> = {},
): pg.Pool {
  checkSslRootCert(url);
  return new pg.Pool({ ...options, connectionString: url, Client: ExplainingClient });
}

/** Throws when the URL names an `sslrootcert` that is not a readable PEM certificate. */
export function checkSslRootCert(url: string, readFile: (path: string) => string = defaultReadFile): void {
  let file: string | null;
  try {
    file = new URL(url).searchParams.get("sslrootcert");
  } catch {
    return; // node-postgres reports a URL it cannot parse itself
  }
  if (!file) return;
  let pem: string;
  try {
    pem = readFile(file);
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ProcessorError(
      `PostgreSQL URL: sslrootcert '${file}' cannot be read (${why}); it must be the path of the PEM file of the CA that signed the server's certificate`,
      false,
    );
  }
  if (!pem.includes("-----BEGIN CERTIFICATE-----")) {
    throw new ProcessorError(
      `PostgreSQL URL: sslrootcert '${file}' holds no PEM certificate; it must be the CA that signed the server's certificate`,
      false,
    );
  }
}

function defaultReadFile(path: string): string {
  return readFileSync(path, "utf8");
}

// Node.js's certificate verification codes (OpenSSL's X509 errors and its own host check).
const TLS_CERT_CODE = /^(ERR_TLS_CERT|CERT_|UNABLE_TO_|SELF_SIGNED|DEPTH_ZERO|HOSTNAME_MISMATCH|INVALID_CA)/;

/**
 * A connection error made plain: a refused server certificate or a server
 * without TLS names PostgreSQL, the server and what to check, and is not
 * retriable (no retry makes a wrong CA right; no `cause`, which `isRetriable`
 * would consult); anything else is unchanged.
 */
export function explainConnectError(err: unknown, server: string): unknown {
  if (!(err instanceof Error)) return err;
  const code = (err as NodeJS.ErrnoException).code;
  if (typeof code === "string" && TLS_CERT_CODE.test(code)) {
    // Node's advice about --use-system-ca does not apply to sslrootcert.
    const reason = err.message.replace(/; if the root CA is installed locally.*$/s, "");
    const explained = new ProcessorError(
      `PostgreSQL at ${server}: TLS certificate rejected: ${reason} (${code}); with sslmode=verify-full the server's certificate must be signed by the CA in sslrootcert and name the URL's host`,
      false,
    );
    return Object.assign(explained, { code });
  }
  if (err.message === "The server does not support SSL connections") {
    return new ProcessorError(
      `PostgreSQL at ${server} does not support TLS, and the URL asks for it (sslmode): enable ssl on the server or remove sslmode`,
      false,
    );
  }
  return err;
}

/** node-postgres's client with `explainConnectError` applied to connection failures. */
class ExplainingClient extends pg.Client {
  override connect(): Promise<pg.Client>;
  override connect(callback: ((err: Error) => void) | ((err: null, c: pg.Client) => void)): void;
  override connect(
    callback?: ((err: Error) => void) | ((err: null, c: pg.Client) => void),
  ): Promise<pg.Client> | undefined {
    const connected = super.connect().catch((err: unknown) => {
      throw explainConnectError(err, `${this.host}:${this.port}`);
    });
    if (!callback) return connected;
    const cb = callback as (err: Error | null, c?: pg.Client) => void;
    connected.then(
      (c) => cb(null, c),
      (err: Error) => cb(err),
    );
    return undefined;
  }
}

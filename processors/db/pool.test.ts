import { createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { isRetriable } from "../runtime/retry.ts";
import { checkSslRootCert, explainConnectError, openPool } from "./pool.ts";

const PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

function codeError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

describe("checkSslRootCert", () => {
  it("accepts URLs without sslrootcert and readable PEM files", () => {
    const never = (): string => {
      throw new Error("read");
    };
    expect(() => checkSslRootCert("postgres://u@db:5432/gavel", never)).not.toThrow();
    expect(() => checkSslRootCert("postgres://u@db:5432/gavel?sslmode=verify-full", never)).not.toThrow();
    const read: string[] = [];
    checkSslRootCert("postgres://u@db/gavel?sslmode=verify-full&sslrootcert=/etc/pg%20ca/ca.crt", (p) => {
      read.push(p);
      return PEM;
    });
    expect(read).toEqual(["/etc/pg ca/ca.crt"]);
  });

  it("names the file and why it cannot be used, not retriable", () => {
    let err: unknown;
    try {
      checkSslRootCert("postgres://u@db/gavel?sslmode=verify-full&sslrootcert=/nope/ca.crt", () => {
        throw codeError("ENOENT: no such file", "ENOENT");
      });
    } catch (e) {
      err = e;
    }
    expect((err as Error).message).toBe(
      "PostgreSQL URL: sslrootcert '/nope/ca.crt' cannot be read (ENOENT); it must be the path of the PEM file of the CA that signed the server's certificate",
    );
    expect(isRetriable(err)).toBe(false);
    expect(() =>
      checkSslRootCert("postgres://u@db/gavel?sslrootcert=/ca.crt", () => "not a certificate"),
    ).toThrow("sslrootcert '/ca.crt' holds no PEM certificate");
  });
});

describe("explainConnectError", () => {
  it("says a refused certificate is PostgreSQL's and stops retries", () => {
    const cause = codeError(
      "unable to verify the first certificate; if the root CA is installed locally, try running Node.js with --use-system-ca",
      "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
    );
    const err = explainConnectError(cause, "db:5432") as Error;
    expect(err.message).toBe(
      "PostgreSQL at db:5432: TLS certificate rejected: unable to verify the first certificate (UNABLE_TO_VERIFY_LEAF_SIGNATURE); with sslmode=verify-full the server's certificate must be signed by the CA in sslrootcert and name the URL's host",
    );
    expect((err as NodeJS.ErrnoException).code).toBe("UNABLE_TO_VERIFY_LEAF_SIGNATURE");
    expect(isRetriable(err)).toBe(false);
    for (const code of ["ERR_TLS_CERT_ALTNAME_INVALID", "SELF_SIGNED_CERT_IN_CHAIN", "CERT_HAS_EXPIRED"]) {
      expect((explainConnectError(codeError("x", code), "db:5432") as Error).message).toContain(
        "TLS certificate rejected",
      );
    }
  });

  it("explains a server without TLS", () => {
    const err = explainConnectError(
      new Error("The server does not support SSL connections"),
      "db:5432",
    ) as Error;
    expect(err.message).toMatch(/^PostgreSQL at db:5432 does not support TLS/);
    expect(isRetriable(err)).toBe(false);
  });

  it("reaches the caller of a pool whose server answers the TLS request with 'N' (ssl=off)", async () => {
    // A PostgreSQL server without TLS answers the 8-byte SSLRequest with one byte, 'N'.
    const server = createServer((s) => s.once("data", () => s.end("N")));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as { port: number }).port;
    const pool = openPool(`postgres://u@127.0.0.1:${port}/db?sslmode=verify-full`, { max: 1 });
    try {
      await expect(pool.query("SELECT 1")).rejects.toThrow(
        `PostgreSQL at 127.0.0.1:${port} does not support TLS, and the URL asks for it (sslmode)`,
      );
    } finally {
      await pool.end();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("leaves other errors alone (a refused connection stays retriable)", () => {
    const refused = codeError("connect ECONNREFUSED 127.0.0.1:5432", "ECONNREFUSED");
    expect(explainConnectError(refused, "db:5432")).toBe(refused);
    const auth = codeError('password authentication failed for user "u"', "28P01");
    expect(explainConnectError(auth, "db:5432")).toBe(auth);
    expect(explainConnectError("text", "db:5432")).toBe("text");
  });
});

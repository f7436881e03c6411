import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { envValue } from "../../api/env.ts";

/** What a key may write. */
export const SCOPES = ["bids", "auctions", "users"] as const;
export type Scope = (typeof SCOPES)[number];

export interface ApiKey {
  /** SHA-256 of the key: keys are never kept or logged in clear. */
  readonly hash: Buffer;
  readonly scopes: ReadonlySet<Scope>;
  /** First 4 characters, for logs. */
  readonly hint: string;
}

/**
 * Parses key entries: `KEY` (every scope) or `KEY=scope+scope`, separated by
 * commas or newlines; `#` starts a comment line.
 */
export function parseApiKeys(text: string): ApiKey[] {
  const out: ApiKey[] = [];
  for (const raw of text.split(/[,\n]/)) {
    const entry = raw.trim();
    if (entry === "" || entry.startsWith("#")) continue;
    const eq = entry.indexOf("=");
    const key = eq < 0 ? entry : entry.slice(0, eq);
    const scopeText = eq < 0 ? "" : entry.slice(eq + 1);
    if (key.length < 8)
      throw new Error(`API key starting ${key.slice(0, 2)}... is shorter than 8 characters`);
    const scopes = new Set<Scope>();
    if (eq < 0) for (const s of SCOPES) scopes.add(s);
    else
      for (const s of scopeText.split("+")) {
        if (!(SCOPES as readonly string[]).includes(s))
          throw new Error(
            `API key ${key.slice(0, 4)}...: unknown scope ${JSON.stringify(s)} (known: ${SCOPES.join(", ")})`,
          );
        scopes.add(s as Scope);
      }
    out.push({ hash: sha256(key), scopes, hint: key.slice(0, 4) });
  }
  return out;
}

function sha256(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}

/** Keys from `GAVEL_API_KEYS` and/or the file named by `GAVEL_API_KEYS_FILE` (a mounted Secret). */
export function apiKeysFromEnv(env: NodeJS.ProcessEnv): ApiKey[] {
  const keys: ApiKey[] = [];
  const inline = envValue("apiKeys", env);
  const file = envValue("apiKeysFile", env);
  if (inline) keys.push(...parseApiKeys(inline));
  if (file) keys.push(...parseApiKeys(readFileSync(file, "utf8")));
  return keys;
}

export type AuthResult = { ok: true; key: ApiKey } | { ok: false; status: 401 | 403; message: string };

/** Checks `Authorization: Bearer KEY` or `X-API-Key: KEY` against the keys and the scope. */
export function authenticate(
  keys: readonly ApiKey[],
  headers: Record<string, string | string[] | undefined>,
  scope: Scope,
): AuthResult {
  let presented: string | undefined;
  const auth = headers.authorization;
  if (typeof auth === "string" && /^Bearer\s+/i.test(auth))
    presented = auth.replace(/^Bearer\s+/i, "").trim();
  const x = headers["x-api-key"];
  if (presented === undefined && typeof x === "string") presented = x.trim();
  if (!presented) {
    return {
      ok: false,
      status: 401,
      message: "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
    };
  }
  const h = sha256(presented);
  const key = keys.find((k) => timingSafeEqual(k.hash, h));
  if (!key) return { ok: false, status: 401, message: "invalid API key" };
  if (!key.scopes.has(scope)) {
    return {
      ok: false,
      status: 403,
      message: `this API key may not write ${scope} (its scopes: ${[...key.scopes].join(", ")})`,
    };
  }
  return { ok: true, key };
}

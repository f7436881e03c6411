import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { apiKeysFromEnv, authenticate, parseApiKeys } from "./auth.ts";

describe("API keys", () => {
  const keys = parseApiKeys("all-scopes-key, bids-only-key=bids\n# comment\n");
  it("parses keys with and without scopes", () => {
    expect(keys).toHaveLength(2);
    expect([...keys[0]!.scopes]).toEqual(["bids", "auctions", "users"]);
    expect([...keys[1]!.scopes]).toEqual(["bids"]);
    expect(() => parseApiKeys("short")).toThrow(/shorter than 8/);
    expect(() => parseApiKeys("longenough=bogus")).toThrow(/unknown scope/);
  });
  it("returns 401 for missing or unknown keys, 403 without the scope", () => {
    expect(authenticate(keys, {}, "bids")).toMatchObject({ ok: false, status: 401 });
    expect(authenticate(keys, { authorization: "Bearer nope-nope-nope" }, "bids")).toMatchObject({
      ok: false,
      status: 401,
    });
    expect(authenticate(keys, { "x-api-key": "bids-only-key" }, "auctions")).toMatchObject({
      ok: false,
      status: 403,
    });
    expect(authenticate(keys, { "x-api-key": "bids-only-key" }, "bids")).toMatchObject({ ok: true });
    expect(authenticate(keys, { authorization: "Bearer all-scopes-key" }, "users")).toMatchObject({
      ok: true,
    });
  });
});

describe("apiKeysFromEnv", () => {
  it("takes the keys of GAVEL_API_KEYS and of the file GAVEL_API_KEYS_FILE names; empty is none", async () => {
    const file = join(await mkdtemp(join(tmpdir(), "gavel-keys-")), "keys");
    await writeFile(file, "file-key-123=users\n");
    const keys = apiKeysFromEnv({ GAVEL_API_KEYS: "inline-key-1=bids", GAVEL_API_KEYS_FILE: file });
    expect(keys.map((k) => [k.hint, [...k.scopes]])).toEqual([
      ["inli", ["bids"]],
      ["file", ["users"]],
    ]);
    expect(apiKeysFromEnv({ GAVEL_API_KEYS: "", GAVEL_API_KEYS_FILE: "" })).toEqual([]);
  });
});

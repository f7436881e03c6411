import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { ENV, type EnvVar, envNumber, envValue } from "./env.ts";
import { CONFIGURATION_DOC, renderConfigurationDoc } from "./env-doc.ts";

const vars: readonly EnvVar[] = Object.values(ENV);

describe("docs/configuration.md", () => {
  it("is checked in up to date (run `node api/env-doc.ts` after changing ENV)", async () => {
    expect(
      await readFile(CONFIGURATION_DOC, "utf8"),
      `${CONFIGURATION_DOC} is stale: run 'node api/env-doc.ts'`,
    ).toBe(renderConfigurationDoc());
  });

  it("has one row per variable", () => {
    const rows = renderConfigurationDoc()
      .split("\n")
      .filter((l) => l.startsWith("| `"));
    expect(rows.map((r) => /^\| `([A-Z0-9_]+)`/.exec(r)?.[1])).toEqual(vars.map((v) => v.name));
  });
});

describe("ENV", () => {
  it("names each variable once, in upper snake case, with a reader and a meaning", () => {
    expect(new Set(vars.map((v) => v.name)).size).toBe(vars.length);
    for (const v of vars) {
      expect(v.name).toMatch(/^[A-Z][A-Z0-9_]*$/);
      expect(v.readBy, v.name).not.toBe("");
      expect(v.doc, v.name).toMatch(/\.$/);
    }
  });

  it("gives no default to a secret (a default secret would be a shared one)", () => {
    for (const v of vars) if (v.secret) expect(v.default, v.name).toBeUndefined();
  });
});

describe("envValue", () => {
  it("treats empty as unset and falls back to the documented default", () => {
    expect(envValue("logLevel", {})).toBe("info");
    expect(envValue("logLevel", { LOG_LEVEL: "" })).toBe("info");
    expect(envValue("logLevel", { LOG_LEVEL: "debug" })).toBe("debug");
    expect(envValue("databaseUrl", { DATABASE_URL: "" })).toBeUndefined();
  });
});

describe("envNumber", () => {
  it("reads a number or its default, and names the variable when it is not one", () => {
    expect(envNumber("ingestMaxInFlight", {})).toBe(20_000);
    expect(envNumber("ingestMaxInFlight", { GAVEL_INGEST_MAX_INFLIGHT: "5" })).toBe(5);
    expect(() => envNumber("ingestMaxInFlight", { GAVEL_INGEST_MAX_INFLIGHT: "many" })).toThrow(
      "GAVEL_INGEST_MAX_INFLIGHT must be a number, got 'many'",
    );
    expect(() =>
      envNumber("httpPort", { GAVEL_HTTP_PORT: "-1" }, (n) => n >= 0, "a port number 0..65535"),
    ).toThrow("GAVEL_HTTP_PORT must be a port number 0..65535, got '-1'");
  });
});

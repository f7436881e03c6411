import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import {
  compareInstalled,
  compareRanges,
  formatDifference,
  forPlatform,
  type Lockfile,
  main,
  nameOf,
  type PackageJson,
  type Platform,
} from "./lockcheck.ts";

const linux: Platform = { os: "linux", cpu: "x64", libc: "glibc" };

const pkg: PackageJson = {
  dependencies: { pg: "8.23.1", kafkajs: "^2.2.0" },
  devDependencies: { "@biomejs/biome": "2.6.8" },
  optionalDependencies: { "@confluentinc/kafka-javascript": "1.10.1" },
};

const bin = (os: string, cpu: string, libc?: string) => ({
  version: "2.6.8",
  integrity: `sha512-${os}-${cpu}-${libc ?? ""}`,
  optional: true,
  dev: true,
  os: [os],
  cpu: [cpu],
  ...(libc ? { libc: [libc] } : {}),
});

/** A lock file as npm writes it for `pkg`, with the biome binaries of three platforms. */
function lockFor(): Lockfile {
  return {
    lockfileVersion: 3,
    packages: {
      "": {
        dependencies: { pg: "8.23.1", kafkajs: "^2.2.0" },
        devDependencies: { "@biomejs/biome": "2.6.8" },
        optionalDependencies: { "@confluentinc/kafka-javascript": "1.10.1" },
      },
      "node_modules/pg": {
        version: "8.23.1",
        integrity: "sha512-pg",
        dependencies: { "pg-types": "^2.1.0" },
      },
      "node_modules/pg-types": { version: "2.2.0", integrity: "sha512-pgtypes" },
      "node_modules/kafkajs": { version: "2.2.4", integrity: "sha512-kafkajs" },
      "node_modules/kafkajs/node_modules/pg-types": { version: "4.0.1", integrity: "sha512-pgtypes4" },
      "node_modules/@confluentinc/kafka-javascript": {
        version: "1.10.1",
        integrity: "sha512-ckjs",
        optional: true,
      },
      "node_modules/@biomejs/biome": { version: "2.6.8", integrity: "sha512-biome", dev: true },
      "node_modules/@biomejs/cli-linux-x64": bin("linux", "x64", "glibc"),
      "node_modules/@biomejs/cli-linux-x64-musl": bin("linux", "x64", "musl"),
      "node_modules/@biomejs/cli-darwin-arm64": bin("darwin", "arm64"),
      // A dependency of another platform's binary: optional, no platform fields.
      "node_modules/@emnapi/core": {
        version: "2.0.0",
        integrity: "sha512-emnapi",
        optional: true,
        dev: true,
      },
    },
  };
}

/** node_modules/.package-lock.json after installing `lock` on linux-x64-glibc. */
function installedFrom(lock: Lockfile): Lockfile {
  const packages = structuredClone(lock.packages ?? {});
  delete packages[""];
  delete packages["node_modules/@biomejs/cli-linux-x64-musl"];
  delete packages["node_modules/@biomejs/cli-darwin-arm64"];
  delete packages["node_modules/@emnapi/core"];
  // npm records the registry URL in the installed tree (not in a lock file
  // written with omit-lockfile-registry-resolved).
  for (const e of Object.values(packages)) e.resolved = "https://registry.npmjs.org/x.tgz";
  return { lockfileVersion: 3, packages };
}

describe("lockcheck", () => {
  it("accepts the locked tree; other platforms' optional packages and rewritten fields are not differences", () => {
    const lock = lockFor();
    expect(compareRanges(pkg, lock)).toEqual([]);
    const c = compareInstalled(lock, installedFrom(lock), linux, pkg);
    expect(c).toEqual({ differences: [], notInstalled: [], otherPlatforms: 2 });
  });

  it("accepts a lock file that lacks other platforms' binaries (written where the registry lacked them)", () => {
    const lock = lockFor();
    delete lock.packages!["node_modules/@biomejs/cli-darwin-arm64"];
    delete lock.packages!["node_modules/@biomejs/cli-linux-x64-musl"];
    const c = compareInstalled(lock, installedFrom(lockFor()), linux, pkg);
    expect(c.differences).toEqual([]);
  });

  it("reports each differing entry: name, locked version and what npm installed", () => {
    const lock = lockFor();
    const installed = installedFrom(lock);
    const p = installed.packages!;
    p["node_modules/kafkajs"] = { version: "2.3.0", integrity: "sha512-kafkajs23" };
    p["node_modules/kafkajs/node_modules/pg-types"] = { version: "4.0.1", integrity: "sha512-other" };
    p["node_modules/left-pad"] = { version: "1.3.0" };
    delete p["node_modules/pg-types"];
    const c = compareInstalled(lock, installed, linux, pkg);
    expect(c.differences.map(formatDifference)).toEqual([
      "kafkajs: locked 2.2.4, npm installed 2.3.0",
      "pg-types (node_modules/kafkajs/node_modules/pg-types): locked 4.0.1, npm installed 4.0.1 with another integrity",
      "left-pad: not in the lock file, npm installed 1.3.0",
      "pg-types: locked 2.2.0, npm did not install it",
    ]);
  });

  it("reports package.json ranges the lock file was not made for", () => {
    const changed: PackageJson = {
      ...pkg,
      dependencies: { pg: "8.23.1", kafkajs: "^2.3.0", yaml: "2.9.1" },
      // Listed in both: npm keeps it only as optional.
      optionalDependencies: { "@confluentinc/kafka-javascript": "1.10.1" },
    };
    changed.dependencies!["@confluentinc/kafka-javascript"] = "1.10.1";
    expect(compareRanges(changed, lockFor()).map(formatDifference)).toEqual([
      "kafkajs: package.json dependencies wants ^2.3.0, the lock file was made for ^2.2.0 (locked 2.2.4)",
      "yaml: package.json dependencies wants 2.9.1, the lock file was made for (none)",
    ]);
  });

  it("notes an optional package for this platform that is not installed (a failed build)", () => {
    const lock = lockFor();
    const installed = installedFrom(lock);
    delete installed.packages!["node_modules/@confluentinc/kafka-javascript"];
    delete installed.packages!["node_modules/@biomejs/cli-linux-x64"];
    const c = compareInstalled(lock, installed, linux, pkg);
    expect(c.differences).toEqual([]);
    expect(c.notInstalled).toEqual(["@biomejs/cli-linux-x64@2.6.8", "@confluentinc/kafka-javascript@1.10.1"]);
  });

  it("matches platforms like npm (negations, libc only on Linux)", () => {
    expect(forPlatform({ os: ["linux"], cpu: ["x64"], libc: ["musl"] }, linux)).toBe(false);
    expect(forPlatform({ os: ["!win32"] }, linux)).toBe(true);
    expect(forPlatform({ os: ["!linux"] }, linux)).toBe(false);
    expect(
      forPlatform({ os: ["darwin"], libc: ["glibc"] }, { os: "darwin", cpu: "arm64", libc: undefined }),
    ).toBe(true);
    expect(nameOf("node_modules/a/node_modules/@s/b")).toBe("@s/b");
  });

  it("the CLI exits 0 for the locked tree, 1 with the differences, 2 without an installed tree", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lockcheck-"));
    const errors: string[] = [];
    const spy = vi.spyOn(console, "error").mockImplementation((m: string) => void errors.push(m));
    try {
      const lock = lockFor();
      writeFileSync(join(dir, "package.json"), JSON.stringify(pkg));
      writeFileSync(join(dir, "package-lock.json"), JSON.stringify(lock));
      expect(main([dir])).toBe(2);
      await mkdir(join(dir, "node_modules"));
      const installed = installedFrom(lock);
      // On another platform the linux-x64 binary is simply an installed entry.
      writeFileSync(join(dir, "node_modules", ".package-lock.json"), JSON.stringify(installed));
      expect(main([dir])).toBe(0);
      installed.packages!["node_modules/pg"]!.version = "8.24.0";
      writeFileSync(join(dir, "node_modules", ".package-lock.json"), JSON.stringify(installed));
      errors.length = 0;
      expect(main([dir])).toBe(1);
      expect(errors).toContain("  pg: locked 8.23.1, npm installed 8.24.0");
      expect(errors.join("\n")).toContain("package-lock.json is out of date");
    } finally {
      spy.mockRestore();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * Checks that the installed npm tree is exactly the one package-lock.json
 * locks, and that the lock file was made for the current package.json.
 *
 *   node scripts/lockcheck.ts [DIR]   (DIR: the package folder, default .)
 *
 * Run after `npm ci` or `npm install --no-save` (scripts/build-image.sh
 * --step install, scripts/test.sh). It compares
 *   - package.json's dependency ranges with those the lock file's root entry
 *     records (npm writes them there when it updates the lock file), and
 *   - node_modules/.package-lock.json, which npm writes on every install and
 *     which lists what is on disk, with package-lock.json's entries: same
 *     paths, versions and integrity.
 * Optional packages that are not installed are not differences: other
 * platforms' binaries (@biomejs/cli-*, @duckdb/node-bindings-*), and optional
 * packages whose build failed, reported as a note. Fields npm rewrites without
 * changing the tree (`resolved`, flags) are ignored.
 *
 * Exit code 0: the installed tree is the locked tree; 1: they differ (each
 * difference on stderr: name, locked version, what npm installed or wanted);
 * 2: a file is missing or unreadable.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

/** One entry of a lock file's `packages` (lockfileVersion 2 and 3). */
export interface LockEntry {
  version?: string;
  integrity?: string;
  resolved?: string;
  link?: boolean;
  dev?: boolean;
  optional?: boolean;
  devOptional?: boolean;
  os?: string[];
  cpu?: string[];
  libc?: string[];
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

export interface Lockfile {
  lockfileVersion?: number;
  packages?: Record<string, LockEntry>;
}

export interface PackageJson {
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

export interface Platform {
  os: string;
  cpu: string;
  /** "glibc" or "musl" on Linux, undefined elsewhere or when unknown. */
  libc: string | undefined;
}

export type Difference =
  /** package.json's range differs from the one the lock file was made for. */
  | { kind: "range"; field: DepField; name: string; wanted?: string; lockedRange?: string; locked?: string }
  /** Installed with another version (or tarball) than the locked one. */
  | { kind: "changed"; path: string; name: string; locked: string; installed: string }
  /** Installed, but the lock file has no such entry. */
  | { kind: "added"; path: string; name: string; installed: string }
  /** Locked (and not optional), but not installed. */
  | { kind: "removed"; path: string; name: string; locked: string };

export interface Comparison {
  differences: Difference[];
  /** Optional packages that could be installed here and are not (a failed optional build). */
  notInstalled: string[];
  /** Optional packages of other platforms (not installed, as expected). */
  otherPlatforms: number;
}

const DEP_FIELDS = ["dependencies", "devDependencies", "optionalDependencies", "peerDependencies"] as const;
type DepField = (typeof DEP_FIELDS)[number];

/** Package name of a lock path: node_modules/a/node_modules/@s/b -> @s/b. */
export function nameOf(path: string): string {
  const i = path.lastIndexOf("node_modules/");
  return i < 0 ? path : path.slice(i + "node_modules/".length);
}

/** npm's os/cpu/libc rule: a "!x" entry excludes x; plain entries, if any, must include the value. */
function allows(list: string[] | undefined, value: string | undefined): boolean {
  if (list === undefined || list.length === 0 || value === undefined) return true;
  if (list.includes(`!${value}`)) return false;
  const plain = list.filter((v) => !v.startsWith("!"));
  return plain.length === 0 || plain.includes(value);
}

export function forPlatform(entry: LockEntry, p: Platform): boolean {
  return (
    allows(entry.os, p.os) && allows(entry.cpu, p.cpu) && (p.os !== "linux" || allows(entry.libc, p.libc))
  );
}

function currentPlatform(): Platform {
  let libc: string | undefined;
  if (process.platform === "linux") {
    const header = (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header;
    libc = header?.glibcVersionRuntime ? "glibc" : "musl";
  }
  return { os: process.platform, cpu: process.arch, libc };
}

function isOptional(e: LockEntry): boolean {
  return e.optional === true || e.devOptional === true;
}

/** What identifies an installed package: version, plus the tarball's integrity when both files know it. */
function sameTarball(a: LockEntry, b: LockEntry): boolean {
  if (a.link || b.link) return a.link === b.link && a.resolved === b.resolved;
  if (a.version !== b.version) return false;
  return a.integrity === undefined || b.integrity === undefined || a.integrity === b.integrity;
}

function describe(e: LockEntry): string {
  if (e.link) return `link to ${e.resolved ?? "?"}`;
  return e.version ?? "?";
}

/** package.json's dependency ranges against the lock file's root entry (as npm normalizes them). */
export function compareRanges(pkg: PackageJson, lock: Lockfile): Difference[] {
  const root = lock.packages?.[""] ?? {};
  const optional = pkg.optionalDependencies ?? {};
  const out: Difference[] = [];
  for (const field of DEP_FIELDS) {
    const wanted = { ...(pkg[field] ?? {}) };
    // npm keeps an optional dependency only under optionalDependencies.
    if (field === "dependencies") for (const name of Object.keys(optional)) delete wanted[name];
    const recorded = root[field] ?? {};
    for (const name of [...new Set([...Object.keys(wanted), ...Object.keys(recorded)])].sort()) {
      if (wanted[name] === recorded[name]) continue;
      const d: Difference = { kind: "range", field, name };
      if (wanted[name] !== undefined) d.wanted = wanted[name];
      if (recorded[name] !== undefined) d.lockedRange = recorded[name];
      const locked = lock.packages?.[`node_modules/${name}`]?.version;
      if (locked !== undefined) d.locked = locked;
      out.push(d);
    }
  }
  return out;
}

/** The installed tree (node_modules/.package-lock.json) against the lock file. */
export function compareInstalled(
  lock: Lockfile,
  installed: Lockfile,
  platform: Platform,
  pkg: PackageJson = {},
): Comparison {
  const locked = lock.packages ?? {};
  const actual = installed.packages ?? {};
  const direct = new Set(DEP_FIELDS.flatMap((f) => Object.keys(pkg[f] ?? {})));
  const c: Comparison = { differences: [], notInstalled: [], otherPlatforms: 0 };
  const paths = [...new Set([...Object.keys(locked), ...Object.keys(actual)])].filter((p) => p !== "").sort();
  for (const path of paths) {
    const l = locked[path];
    const a = actual[path];
    const name = nameOf(path);
    if (l !== undefined && a !== undefined) {
      if (!sameTarball(l, a)) {
        const other = l.version === a.version && !l.link && !a.link ? " with another integrity" : "";
        c.differences.push({
          kind: "changed",
          path,
          name,
          locked: describe(l),
          installed: describe(a) + other,
        });
      }
    } else if (a !== undefined) {
      c.differences.push({ kind: "added", path, name, installed: describe(a) });
    } else if (l !== undefined) {
      if (!isOptional(l)) c.differences.push({ kind: "removed", path, name, locked: describe(l) });
      else if (!forPlatform(l, platform)) c.otherPlatforms++;
      // Optional for this platform: a direct dependency, or a platform binary
      // meant for this machine, should have been installed; others are
      // dependencies of optional packages that are not.
      else if ((path === `node_modules/${name}` && direct.has(name)) || l.os || l.cpu || l.libc)
        c.notInstalled.push(`${name}@${describe(l)}`);
    }
  }
  return c;
}

export function formatDifference(d: Difference): string {
  const where = (path: string, name: string) =>
    path === `node_modules/${name}` ? name : `${name} (${path})`;
  switch (d.kind) {
    case "range":
      return `${d.name}: package.json ${d.field} wants ${d.wanted ?? "(none)"}, the lock file was made for ${d.lockedRange ?? "(none)"}${d.locked ? ` (locked ${d.locked})` : ""}`;
    case "changed":
      return `${where(d.path, d.name)}: locked ${d.locked}, npm installed ${d.installed}`;
    case "added":
      return `${where(d.path, d.name)}: not in the lock file, npm installed ${d.installed}`;
    case "removed":
      return `${where(d.path, d.name)}: locked ${d.locked}, npm did not install it`;
  }
}

function readJson<T>(file: string): T {
  return JSON.parse(readFileSync(file, "utf8")) as T;
}

export function main(argv: string[]): number {
  const dir = argv[0] ?? ".";
  let pkg: PackageJson;
  let lock: Lockfile;
  let installed: Lockfile;
  try {
    pkg = readJson(join(dir, "package.json"));
    lock = readJson(join(dir, "package-lock.json"));
    installed = readJson(join(dir, "node_modules", ".package-lock.json"));
  } catch (e) {
    console.error(`lockcheck: ${(e as Error).message} (run npm ci first)`);
    return 2;
  }
  const c = compareInstalled(lock, installed, currentPlatform(), pkg);
  const differences = [...compareRanges(pkg, lock), ...c.differences];
  if (c.notInstalled.length > 0)
    console.error(
      `lockcheck: note: optional packages not installed (failed builds?): ${c.notInstalled.join(", ")}`,
    );
  if (differences.length > 0) {
    console.error(
      `lockcheck: package-lock.json is out of date: ${differences.length} ${differences.length === 1 ? "entry differs" : "entries differ"} from package.json or the installed tree:`,
    );
    const shown = differences.slice(0, 40);
    for (const d of shown) console.error(`  ${formatDifference(d)}`);
    if (differences.length > shown.length)
      console.error(`  ... and ${differences.length - shown.length} more`);
    console.error("lockcheck: run npm install and commit package-lock.json");
    return 1;
  }
  const n = Object.keys(installed.packages ?? {}).filter((p) => p !== "").length;
  console.error(
    `lockcheck: the installed tree is the locked tree (${n} packages; ${c.otherPlatforms} optional packages of other platforms skipped)`,
  );
  return 0;
}

if (import.meta.main) process.exit(main(process.argv.slice(2)));

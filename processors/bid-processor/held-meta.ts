/**
 * The offset metadata the bid-processor commits with a bids partition's
 * offset while bids wait for their auction: how far the partition was
 * processed (`u`) and which offsets below it are still held (to be decided
 * again after a restart). Kafka refuses metadata longer than the broker's
 * `offset.metadata.max.bytes` (4,096 by default), so held offsets are
 * written as runs of consecutive offsets, each as its distance from the end
 * of the previous run, in base 36: a backlog of thousands of consecutive
 * held bids takes a few bytes. `fits` tells the runtime when the hold is too
 * scattered to fit; it then rejects the oldest held bids first.
 *
 * A bid's arrival (the partition clock when it was first read) is its own
 * timestamp unless it was stamped before records logged ahead of it (a
 * producer that buffered through an outage). A restart re-reads the log from
 * the oldest held bid, so the clock there is rebuilt from the timestamps,
 * except where it was ahead of them: `c` is the clock at `u` (where reading
 * resumes), `a` the arrivals of held bids that arrived after their own
 * timestamp, the oldest first, as many as fit (the oldest alone already
 * lifts the clock for those read after it), so a restart judges and
 * expires them as the first run would.
 * The auction-update queue of the bid-processor uses the same format for the
 * auctions offset (offsets of updates read but waiting for the bids' clock).
 */

/** Kafka's default `offset.metadata.max.bytes`, with room to spare. */
export const HELD_META_MAX_BYTES = 3_900;

export interface HeldMeta {
  /** Next bid offset not yet processed. */
  readonly u: number;
  /** Held offsets below `u`, ascending. */
  readonly h: readonly number[];
  /** Arrival (ms) of held offsets that arrived after their own timestamp; absent when none did. */
  readonly a?: ReadonlyMap<number, number>;
  /** The partition clock (ms) at `u`: the least arrival of the next record. */
  readonly c?: number;
}

/**
 * `{"v":2,"u":U,"h":"<runs>"[,"c":"<ms>"][,"a":"<arrivals>"]}`; runs are
 * `gap[+extra]` in base 36, joined by `.` (see the file comment); arrivals
 * `offset~ms` in base 36, the offset as its distance from the previous one,
 * joined by `.`, cut to what fits the limit (they never make it overflow).
 */
export function encodeHeldMeta(meta: HeldMeta): string {
  const sorted = [...new Set(meta.h)].sort((a, b) => a - b);
  const runs: string[] = [];
  let prevEnd = 0;
  for (let i = 0; i < sorted.length; ) {
    const start = sorted[i] as number;
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === (sorted[j] as number) + 1) j++;
    const extra = j - i;
    runs.push(`${(start - prevEnd).toString(36)}${extra > 0 ? `+${extra.toString(36)}` : ""}`);
    prevEnd = start + extra + 1;
    i = j + 1;
  }
  const base = JSON.stringify({
    v: 2,
    u: meta.u,
    h: runs.join("."),
    ...(meta.c === undefined ? {} : { c: meta.c.toString(36) }),
  });
  const held = new Set(sorted);
  const arrivals = [...(meta.a ?? [])].filter(([o]) => held.has(o)).sort((x, y) => x[0] - y[0]);
  let room = HELD_META_MAX_BYTES - Buffer.byteLength(base, "utf8") - ',"a":""'.length;
  let prev = 0;
  const a: string[] = [];
  for (const [o, ms] of arrivals) {
    const token = `${(o - prev).toString(36)}~${ms.toString(36)}`;
    room -= token.length + (a.length > 0 ? 1 : 0);
    if (room < 0) break;
    a.push(token);
    prev = o;
  }
  return a.length === 0 ? base : `${base.slice(0, -1)},"a":"${a.join(".")}"}`;
}

/** Whether the encoded metadata is within the broker's limit. */
export function fits(encoded: string): boolean {
  return Buffer.byteLength(encoded, "utf8") <= HELD_META_MAX_BYTES;
}

/**
 * Parses what `encodeHeldMeta` wrote, and the first format (a plain array of
 * offsets, written by earlier versions), so an upgrade resumes correctly.
 * Anything else (metadata of another tool) is ignored: undefined.
 */
export function parseHeldMeta(s: string | null | undefined): HeldMeta | undefined {
  if (!s) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(s);
  } catch {
    return undefined;
  }
  if (typeof v !== "object" || v === null) return undefined;
  const o = v as { u?: unknown; h?: unknown; a?: unknown; c?: unknown };
  if (typeof o.u !== "number" || !Number.isSafeInteger(o.u)) return undefined;
  if (Array.isArray(o.h)) {
    if (!o.h.every((x) => typeof x === "number" && Number.isSafeInteger(x))) return undefined;
    return { u: o.u, h: o.h as number[] };
  }
  if (typeof o.h !== "string") return undefined;
  const h: number[] = [];
  let prevEnd = 0;
  for (const token of o.h === "" ? [] : o.h.split(".")) {
    const m = /^([0-9a-z]+)(?:\+([0-9a-z]+))?$/.exec(token);
    if (!m) return undefined;
    const start = prevEnd + Number.parseInt(m[1] as string, 36);
    const extra = m[2] === undefined ? 0 : Number.parseInt(m[2], 36);
    for (let k = 0; k <= extra; k++) h.push(start + k);
    prevEnd = start + extra + 1;
  }
  let c: number | undefined;
  if (o.c !== undefined) {
    if (typeof o.c !== "string" || !/^[0-9a-z]+$/.test(o.c)) return undefined;
    c = Number.parseInt(o.c, 36);
  }
  const withClock = c === undefined ? {} : { c };
  if (o.a === undefined) return { u: o.u, h, ...withClock };
  if (typeof o.a !== "string") return undefined;
  const a = new Map<number, number>();
  let prev = 0;
  for (const token of o.a === "" ? [] : o.a.split(".")) {
    const m = /^([0-9a-z]+)~([0-9a-z]+)$/.exec(token);
    if (!m) return undefined;
    prev += Number.parseInt(m[1] as string, 36);
    a.set(prev, Number.parseInt(m[2] as string, 36));
  }
  return { u: o.u, h, a, ...withClock };
}

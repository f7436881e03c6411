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
 */

/** Kafka's default `offset.metadata.max.bytes`, with room to spare. */
export const HELD_META_MAX_BYTES = 3_900;

export interface HeldMeta {
  /** Next bid offset not yet processed. */
  readonly u: number;
  /** Held offsets below `u`, ascending. */
  readonly h: readonly number[];
}

/** `{"v":2,"u":U,"h":"<runs>"}`; runs are `gap[+extra]` in base 36, joined by `.` (see the file comment). */
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
  return JSON.stringify({ v: 2, u: meta.u, h: runs.join(".") });
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
  const o = v as { u?: unknown; h?: unknown };
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
  return { u: o.u, h };
}

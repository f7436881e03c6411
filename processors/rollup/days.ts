/**
 * Calendar days of the rollup. A gold `day` is a calendar date in the
 * pipeline's time zone (`spec.rollup.timeZone`, default UTC); its instants are
 * [local midnight, next local midnight), computed by PostgreSQL so daylight
 * saving days have 23 or 25 hours.
 */

const DAY_RE = /^(\d{4})-(\d{2})-(\d{2})$/;
const MS_PER_DAY = 86_400_000;

/** A usage error (bad flag value): the CLI prints it with the usage. */
export class RollupUsageError extends Error {
  readonly retriable = false;
  constructor(message: string) {
    super(message);
    this.name = "RollupUsageError";
  }
}

/** Validates `YYYY-MM-DD` (a real calendar date) and returns it unchanged. */
export function parseDay(s: string): string {
  const m = DAY_RE.exec(s);
  if (m) {
    const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
    const t = new Date(Date.UTC(y, mo - 1, d));
    if (t.getUTCFullYear() === y && t.getUTCMonth() === mo - 1 && t.getUTCDate() === d) return s;
  }
  throw new RollupUsageError(
    `invalid day ${JSON.stringify(s)}: use a calendar date YYYY-MM-DD, e.g. 2026-11-21`,
  );
}

export function validateTimeZone(tz: string): string {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return tz;
  } catch {
    throw new RollupUsageError(
      `unknown time zone ${JSON.stringify(tz)}: use an IANA name like UTC or Europe/Berlin`,
    );
  }
}

/** Days since 1970-01-01 of a `YYYY-MM-DD`; used as the advisory lock key of the day. */
export function dayNumber(day: string): number {
  const [y, m, d] = parseDay(day).split("-").map(Number) as [number, number, number];
  return Math.round(Date.UTC(y, m - 1, d) / MS_PER_DAY);
}

export function addDays(day: string, n: number): string {
  return new Date((dayNumber(day) + n) * MS_PER_DAY).toISOString().slice(0, 10);
}

/** The local calendar date of an instant in a time zone. */
export function localDate(now: Date, timeZone: string): string {
  const parts = new Intl.DateTimeFormat("en-CA", {
    timeZone: validateTimeZone(timeZone),
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
  }).formatToParts(now);
  const get = (t: string) => parts.find((p) => p.type === t)?.value ?? "";
  return `${get("year")}-${get("month")}-${get("day")}`;
}

/** Yesterday in the time zone: the default day of a scheduled run after local midnight. */
export function yesterday(now: Date, timeZone: string): string {
  return addDays(localDate(now, timeZone), -1);
}

/** Inclusive list of days from..to; refuses reversed or huge ranges. */
export function dayRange(from: string, to: string, maxDays = 3660): string[] {
  const a = dayNumber(from);
  const b = dayNumber(to);
  if (b < a) throw new RollupUsageError(`--from ${from} is after --to ${to}`);
  if (b - a + 1 > maxDays) throw new RollupUsageError(`range ${from}..${to} has more than ${maxDays} days`);
  const out: string[] = [];
  for (let n = a; n <= b; n++) out.push(new Date(n * MS_PER_DAY).toISOString().slice(0, 10));
  return out;
}

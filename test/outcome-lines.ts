/**
 * Canonical outcome lines of the bid-processor's outputs, for comparing two
 * runs (or a run and a replay) decision by decision. Pure; shared by the
 * unit tests of the core and the integration tests of the outcomes.
 */
import type { OutputTopic } from "../processors/domain/bid-core.ts";

/** Canonical outcome lines with their multiplicity (a duplicate input repeats its line). */
export type Outcomes = Map<string, number>;

export type Json = Record<string, unknown>;

/**
 * One line per decision, without the free-text details (held times differ by
 * design). `scores: false` leaves out fraud scores and alerts (for runs whose
 * decision order may differ where the fraud scorer's history depends on it).
 */
export function outcomeLine(topic: OutputTopic, v: Json, scores = true): string | undefined {
  const score = (x: unknown) => (scores ? ` score=${x ?? ""}` : "");
  switch (topic) {
    case "bidsAccepted":
      return `bid ${v.bid_id}@${v.received_at} accepted amount=${v.amount}${score(v.fraud_score)} seq=${v.bid_seq} ends=${v.ends_at} extended=${v.extended}`;
    case "bidsRejected":
      return `bid ${v.bid_id ?? v.rejection_id}@${v.received_at ?? ""} ${v.reason}${score(v.fraud_score)}`;
    case "transactions":
      return `auction ${v.auction_id} winner=${v.winner_id} high=${v.high_bidder_id} price=${v.final_price} reserve_met=${v.reserve_met} closed_at=${v.closed_at} bids=${v.bid_count} first=${v.first_bid_at}`;
    case "fraudAlerts": {
      if (!scores) return undefined;
      const signals = (v.signals as { name: string; contribution: number }[]).map(
        (s) => `${s.name}:${s.contribution}`,
      );
      return `alert ${v.bid_id}@${v.created_at} score=${v.score} quarantined=${v.quarantined} ${signals.join(",")}`;
    }
    default:
      return undefined;
  }
}

export function add(out: Outcomes, line: string | undefined): void {
  if (line !== undefined) out.set(line, (out.get(line) ?? 0) + 1);
}

/** Human-readable differences (at most `max` lines), empty when equal. */
export function diffOutcomes(want: Outcomes, got: Outcomes, max = 20): string[] {
  const diffs: string[] = [];
  for (const [line, n] of want) {
    const m = got.get(line) ?? 0;
    if (m !== n) diffs.push(`oracle ${n}x, run ${m}x: ${line}`);
  }
  for (const [line, m] of got) if (!want.has(line)) diffs.push(`oracle 0x, run ${m}x: ${line}`);
  // The two sides of one decision next to each other.
  const subject = (d: string) => d.slice(d.indexOf(": ") + 2);
  diffs.sort((a, b) => subject(a).localeCompare(subject(b)));
  return diffs.slice(0, max).concat(diffs.length > max ? [`... ${diffs.length - max} more`] : []);
}

/** Total lines (with multiplicity). */
export function size(o: Outcomes): number {
  let n = 0;
  for (const v of o.values()) n += v;
  return n;
}

import { describe, expect, it } from "vitest";
import { countOutputs, observeEndToEnd, pipelineMetrics } from "./instrument.ts";
import { Registry } from "./metrics.ts";

describe("business metrics", () => {
  it("counts committed outputs by reason, signal and outcome", async () => {
    const reg = new Registry("gavel_", { env: {} });
    const m = pipelineMetrics(reg);
    countOutputs(m, [
      { topic: "bidsAccepted", value: {} },
      { topic: "bidsRejected", value: { reason: "below_minimum" } },
      {
        topic: "fraudAlerts",
        value: { quarantined: true, signals: [{ name: "bid_velocity" }, { name: "new_account_high_bid" }] },
      },
      { topic: "transactions", value: { winner_id: null } },
      { topic: "prices", value: {} },
    ]);
    const rendered = async (lines: readonly string[]) => {
      const text = await reg.render();
      for (const line of lines) expect(text).toContain(line);
    };
    await rendered([
      "gavel_bids_accepted_total 1",
      'gavel_bids_rejected_total{reason="below_minimum"} 1',
      'gavel_fraud_alerts_total{signal="bid_velocity"} 1',
      'gavel_fraud_alert_bids_total{quarantined="true"} 1',
      'gavel_auctions_closed_total{outcome="unsold"} 1',
    ]);
    // Tallied per label set within a call, added across calls.
    const accepted = { topic: "bidsAccepted", value: {} };
    const rejected = (reason: string) => ({ topic: "bidsRejected", value: { reason } });
    const sold = { topic: "transactions", value: { winner_id: "u1" } };
    const below = rejected("below_minimum");
    countOutputs(m, [accepted, accepted, below, rejected("auction_closed"), below, sold]);
    await rendered([
      "gavel_bids_accepted_total 3",
      'gavel_bids_rejected_total{reason="below_minimum"} 3',
      'gavel_bids_rejected_total{reason="auction_closed"} 1',
      'gavel_auctions_closed_total{outcome="sold"} 1',
      'gavel_auctions_closed_total{outcome="unsold"} 1',
    ]);
  });

  it("observes end-to-end latency from received_at and placed_at", async () => {
    const reg = new Registry("gavel_", { env: {} });
    const m = pipelineMetrics(reg);
    const now = Date.parse("2026-01-01T00:00:01.000Z");
    const value = { received_at: "2026-01-01T00:00:00.800Z", placed_at: "2026-01-01T00:00:00.000Z" };
    // Values without usable instants are skipped.
    observeEndToEnd(m, "accepted", [value, { received_at: 5 }, { placed_at: "yesterday" }], now);
    const text = await reg.render();
    expect(text).toContain(
      'gavel_bid_end_to_end_seconds_bucket{since="received",outcome="accepted",le="0.25"} 1',
    );
    expect(text).toContain(
      'gavel_bid_end_to_end_seconds_bucket{since="received",outcome="accepted",le="0.1"} 0',
    );
    expect(text).toContain('gavel_bid_end_to_end_seconds_sum{since="placed",outcome="accepted"} 1');
  });
});

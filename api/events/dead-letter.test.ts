import { describe, expect, it } from "vitest";
import { bid } from "../../test/event-fixtures.ts";
import { bidRejection, rejectionId } from "./dead-letter.ts";

describe("dead-letter records", () => {
  it("keeps the raw record of a malformed bid and salvages its ids", () => {
    const raw = JSON.stringify(bid({ amount: 1.5 }));
    const rej = bidRejection(raw, "malformed", "amount: ...");
    expect(rej).toMatchObject({ reason: "malformed", bid_id: "b-1", auction_id: "a-1", amount: 1.5, raw });
    expect(rej.rejection_id).toBe(rejectionId(raw));
    expect(rej.rejection_id).toMatch(/^[0-9a-f]{32}$/);
    const garbage = bidRejection("%%%", "malformed", "x");
    expect(garbage).toMatchObject({ bid_id: null, auction_id: null, raw: "%%%" });
    expect(rejectionId("a")).not.toBe(rejectionId("b"));
  });
});

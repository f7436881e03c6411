import { describe, expect, it } from "vitest";
import {
  addDays,
  dayNumber,
  dayRange,
  localDate,
  parseDay,
  RollupUsageError,
  validateTimeZone,
  yesterday,
} from "./days.ts";

describe("days", () => {
  it("parses real calendar dates only", () => {
    expect(parseDay("2026-02-28")).toBe("2026-02-28");
    expect(() => parseDay("2026-02-29")).toThrow(RollupUsageError);
    expect(() => parseDay("2026-2-1")).toThrow(/YYYY-MM-DD/);
    expect(() => parseDay("yesterday")).toThrow(RollupUsageError);
  });

  it("numbers days from the epoch", () => {
    expect(dayNumber("1970-01-01")).toBe(0);
    expect(dayNumber("1970-01-02")).toBe(1);
    expect(addDays("2026-12-31", 1)).toBe("2027-01-01");
    expect(addDays("2024-03-01", -1)).toBe("2024-02-29");
  });

  it("computes yesterday in the pipeline's time zone", () => {
    const now = new Date("2026-11-22T01:30:00Z");
    expect(yesterday(now, "UTC")).toBe("2026-11-21");
    // 17:30 on the 21st in Los Angeles.
    expect(yesterday(now, "America/Los_Angeles")).toBe("2026-11-20");
    // 10:30 on the 22nd in Tokyo.
    expect(localDate(now, "Asia/Tokyo")).toBe("2026-11-22");
    expect(yesterday(now, "Asia/Tokyo")).toBe("2026-11-21");
  });

  it("rejects unknown time zones", () => {
    expect(validateTimeZone("Europe/Berlin")).toBe("Europe/Berlin");
    expect(() => validateTimeZone("Mars/Olympus")).toThrow(/IANA/);
  });

  it("expands inclusive ranges and rejects reversed ones", () => {
    expect(dayRange("2026-02-27", "2026-03-02")).toEqual([
      "2026-02-27",
      "2026-02-28",
      "2026-03-01",
      "2026-03-02",
    ]);
    expect(dayRange("2026-01-01", "2026-01-01")).toEqual(["2026-01-01"]);
    expect(() => dayRange("2026-01-02", "2026-01-01")).toThrow(/after/);
  });
});

import { describe, expect, it } from "vitest";
import { isIsoCurrency, minorDigits } from "../../api/events/currency.ts";
import { formatMinor, formatMoney, isValidAmount, mulRatio, parseDecimal, sumMinor } from "./money.ts";

describe("parseDecimal", () => {
  it("parses major units to integer minor units without floating point", () => {
    expect(parseDecimal("12.34", "USD")).toEqual({ ok: true, value: 1234 });
    expect(parseDecimal("0.1", "USD")).toEqual({ ok: true, value: 10 });
    expect(parseDecimal("1000", "EUR")).toEqual({ ok: true, value: 100000 });
    // 0.1 + 0.2 style float traps: 1.15 * 100 is 114.99999999999999 in floats.
    expect(parseDecimal("1.15", "USD")).toEqual({ ok: true, value: 115 });
    expect(parseDecimal("4.35", "USD")).toEqual({ ok: true, value: 435 });
    expect(parseDecimal(" 7.00 ", "USD")).toEqual({ ok: true, value: 700 });
  });

  it("uses the currency's minor unit", () => {
    expect(parseDecimal("500", "JPY")).toEqual({ ok: true, value: 500 });
    expect(parseDecimal("1.234", "KWD")).toEqual({ ok: true, value: 1234 });
    expect(parseDecimal("1.5", "JPY").ok).toBe(false);
  });

  it("rejects fractional cents but allows trailing zeros", () => {
    const r = parseDecimal("12.345", "USD");
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.detail).toMatch(/fractional minor units/);
    expect(parseDecimal("12.3400", "USD")).toEqual({ ok: true, value: 1234 });
  });

  it("rejects signs, exponents, separators, garbage and overflow", () => {
    for (const s of ["-1.00", "+1", "1e3", "1,000.00", "", "abc", "1.", ".5", "NaN", "Infinity"]) {
      expect(parseDecimal(s, "USD").ok, s).toBe(false);
    }
    expect(parseDecimal("90071992547409.92", "USD").ok).toBe(false);
    expect(parseDecimal("90071992547409.91", "USD")).toEqual({ ok: true, value: Number.MAX_SAFE_INTEGER });
  });
});

describe("formatting and arithmetic", () => {
  it("formats minor units", () => {
    expect(formatMinor(1234, "USD")).toBe("12.34");
    expect(formatMinor(5, "USD")).toBe("0.05");
    expect(formatMinor(-5, "USD")).toBe("-0.05");
    expect(formatMinor(500, "JPY")).toBe("500");
    expect(formatMinor(1234, "KWD")).toBe("1.234");
    expect(formatMoney(100000, "EUR")).toBe("1000.00 EUR");
    expect(formatMinor(2n ** 60n, "USD")).toBe("11529215046068469.76");
  });

  it("round-trips parse and format", () => {
    for (const c of ["USD", "JPY", "KWD"]) {
      for (const v of [1, 99, 100, 12345, 987654321]) {
        const r = parseDecimal(formatMinor(v, c), c);
        expect(r).toEqual({ ok: true, value: v });
      }
    }
  });

  it("sums exactly past 2^53", () => {
    expect(sumMinor([Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, 2])).toBe(2n ** 54n);
    expect(sumMinor([])).toBe(0n);
  });

  it("multiplies by a ratio with half-to-even rounding", () => {
    expect(mulRatio(1000, 15, 100)).toBe(150);
    expect(mulRatio(5, 1, 2)).toBe(2); // 2.5 -> 2
    expect(mulRatio(15, 1, 10)).toBe(2); // 1.5 -> 2
    expect(mulRatio(25, 1, 10)).toBe(2); // 2.5 -> 2
    expect(mulRatio(26, 1, 10)).toBe(3);
    expect(mulRatio(-25, 1, 10)).toBe(-2);
    expect(() => mulRatio(1, 1, 0)).toThrow(/denominator/);
    expect(() => mulRatio(1.5, 1, 2)).toThrow(/safe integers/);
  });

  it("validates amounts and currencies", () => {
    expect(isValidAmount(1)).toBe(true);
    expect(isValidAmount(0)).toBe(false);
    expect(isValidAmount(-5)).toBe(false);
    expect(isValidAmount(1.5)).toBe(false);
    expect(isValidAmount(2 ** 53)).toBe(false);
    expect(isValidAmount("100")).toBe(false);
    expect(isIsoCurrency("USD")).toBe(true);
    expect(isIsoCurrency("usd")).toBe(false);
    expect(isIsoCurrency("ABC")).toBe(false);
    expect(isIsoCurrency("XXX")).toBe(false);
    expect(minorDigits("EUR")).toBe(2);
    expect(minorDigits("JPY")).toBe(0);
  });
});

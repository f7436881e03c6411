/**
 * Money is integer minor units (cents) with an ISO 4217 currency, never a
 * binary float. JS numbers are exact integers below 2^53 (9e15 cents is 90
 * trillion currency units), which bounds every single amount; sums that can
 * grow past that use bigint (see `sumMinor`).
 */

import { minorDigits } from "../../api/events/currency.ts";

/** A valid single amount: a safe, positive integer of minor units. */
export function isValidAmount(amount: unknown): amount is number {
  return typeof amount === "number" && Number.isSafeInteger(amount) && amount > 0;
}

export type ParseResult = { ok: true; value: number } | { ok: false; detail: string };

/**
 * Parses a decimal string of major units ("12.34", "1000", "0.5") into
 * integer minor units for the currency, without floating point. Rejects more
 * decimals than the currency has (fractional cents), signs, exponents,
 * thousands separators and amounts past 2^53.
 */
export function parseDecimal(text: string, currency: string): ParseResult {
  const digits = minorDigits(currency);
  const s = text.trim();
  const m = /^(\d+)(?:\.(\d+))?$/.exec(s);
  if (!m) {
    return {
      ok: false,
      detail: `"${text}" is not a plain decimal number like 12.34 (no sign, exponent or separators)`,
    };
  }
  const whole = m[1]!;
  const frac = m[2] ?? "";
  if (frac.length > digits) {
    // "12.340" is fine (trailing zeros), "12.345" is a fractional cent.
    if (!/^0*$/.test(frac.slice(digits))) {
      return {
        ok: false,
        detail: `"${text}" has ${frac.length} decimals but ${currency} has ${digits}: fractional minor units are not allowed`,
      };
    }
  }
  const minor =
    BigInt(whole) * 10n ** BigInt(digits) + BigInt((frac.slice(0, digits) || "0").padEnd(digits, "0"));
  if (minor > BigInt(Number.MAX_SAFE_INTEGER)) {
    return { ok: false, detail: `"${text}" is too large (more than ${Number.MAX_SAFE_INTEGER} minor units)` };
  }
  return { ok: true, value: Number(minor) };
}

/** Formats minor units as a plain decimal string of major units: 1234 USD -> "12.34", 5 JPY -> "5". */
export function formatMinor(minor: number | bigint, currency: string): string {
  const digits = minorDigits(currency);
  let v = BigInt(minor);
  const neg = v < 0n;
  if (neg) v = -v;
  const base = 10n ** BigInt(digits);
  const whole = (v / base).toString();
  const frac = digits === 0 ? "" : `.${(v % base).toString().padStart(digits, "0")}`;
  return `${neg ? "-" : ""}${whole}${frac}`;
}

/** Formats with the currency code: "12.34 USD". */
export function formatMoney(minor: number | bigint, currency: string): string {
  return `${formatMinor(minor, currency)} ${currency}`;
}

/** Exact sum of many amounts (GMV and other totals can pass 2^53). */
export function sumMinor(amounts: Iterable<number | bigint>): bigint {
  let total = 0n;
  for (const a of amounts) total += BigInt(a);
  return total;
}

/**
 * Minor units times a ratio, rounded half-to-even (banker's rounding) so
 * repeated fee/percentage computations do not drift upward. `ratio` is given
 * as a numerator/denominator pair of integers to stay exact.
 */
export function mulRatio(minor: number, numerator: number, denominator: number): number {
  if (
    !Number.isSafeInteger(minor) ||
    !Number.isSafeInteger(numerator) ||
    !Number.isSafeInteger(denominator)
  ) {
    throw new RangeError("mulRatio takes safe integers");
  }
  if (denominator === 0) throw new RangeError("mulRatio: denominator is 0");
  const n = BigInt(minor) * BigInt(numerator);
  const d = BigInt(denominator);
  const sign = n < 0n !== d < 0n ? -1n : 1n;
  const an = n < 0n ? -n : n;
  const ad = d < 0n ? -d : d;
  let q = an / ad;
  const r = an % ad;
  if (r * 2n > ad || (r * 2n === ad && q % 2n === 1n)) q += 1n;
  return Number(sign * q);
}

/**
 * The id rule of the event contract: which text is an id, how a refusal is
 * explained, how an id becomes a key segment, and the `Id` field type the
 * event schemas (`types.ts`) are built with. One rule for every process:
 * ingest answers 400 with its message, the bid-processor dead-letters the
 * bid, the silver-writer dead-letters the row.
 */
import { Kind, Type, TypeRegistry } from "@sinclair/typebox";

// Identifiers (auction_id, bid_id, bidder_id, seller_id, item_id, user_id):
// opaque text, as real marketplaces name their users (`d*elmer`, `Jürgen`,
// `名前`). The rule, also in docs/events.md#identifiers:
//
// - 1 to ID_MAX_CHARS (128) characters, counted in Unicode code points (not
//   UTF-16 units, not bytes: at most 512 bytes in UTF-8);
// - none of them a control character (category Cc: C0 U+0000-U+001F, DEL
//   U+007F, C1 U+0080-U+009F), a lone surrogate, the line or paragraph
//   separator U+2028/U+2029, or a bidirectional embedding, override or
//   isolate (U+202A-U+202E, U+2066-U+2069: they reorder how the text around
//   them is displayed in logs and dashboards, "Trojan Source");
// - the first and the last not white space (Unicode White_Space plus U+FEFF,
//   the byte-order mark: exactly JavaScript's \s). Spaces inside are fine.
//
// Other format characters (category Cf: ZWJ/ZWNJ in emoji and Indic or
// Persian names, soft hyphen, tag characters of flag emoji, U+200B) are
// allowed, and so are unassigned and private-use code points (the rule must
// not depend on the Unicode version of a validator). Ids are compared as
// they are: no trimming, no case folding, no Unicode normalisation (NFC
// "Jürgen" and NFD "Jürgen" are two ids). Those refusals also make ids safe
// to join with U+0000 (composite keys), to put in CSV and log lines, and
// they keep PostgreSQL text (which cannot hold NUL) able to store every id.

/** Longest id, in Unicode code points. */
export const ID_MAX_CHARS = 128;

/** Refused anywhere in an id (regex class body; surrogates are handled apart). */
const ID_FORBIDDEN = "\\u0000-\\u001F\\u007F-\\u009F\\u2028\\u2029\\u202A-\\u202E\\u2066-\\u2069";
/** Refused as the first or the last character too: Unicode White_Space (beyond Cc) and U+FEFF (JavaScript's \s). */
const ID_SPACE = " \\u00A0\\u1680\\u2000-\\u200A\\u202F\\u205F\\u3000\\uFEFF";
const ID_PAIR = "[\\uD800-\\uDBFF][\\uDC00-\\uDFFF]";
const ID_INNER = `([^${ID_FORBIDDEN}\\uD800-\\uDFFF]|${ID_PAIR})`;
const ID_EDGE = `([^${ID_FORBIDDEN}${ID_SPACE}\\uD800-\\uDFFF]|${ID_PAIR})`;

/**
 * The rule as a JSON Schema `pattern` (ECMA-262), for the published schemas:
 * it means the same with and without the `u` flag (a surrogate pair is one
 * character either way, a lone surrogate matches nothing), so every
 * validator agrees; only the regex tokens JSON Schema recommends for
 * portability (classes, groups, alternation, `*`, `?`, anchors). Length is
 * `maxLength` (JSON Schema counts code points).
 */
export const ID_PATTERN = `^${ID_EDGE}(${ID_INNER}*${ID_EDGE})?$`;

/** The same rule for the hot path: one precompiled `u` regex (code points), plus the length check. */
const ID_RE = new RegExp(
  `^[^${ID_FORBIDDEN}${ID_SPACE}\\uD800-\\uDFFF](?:[^${ID_FORBIDDEN}\\uD800-\\uDFFF]*[^${ID_FORBIDDEN}${ID_SPACE}\\uD800-\\uDFFF])?$`,
  "u",
);

/** Whether `v` is a valid id (see the rule above). Per record on the hot path: a length test and one regex. */
export function isId(v: unknown): v is string {
  if (typeof v !== "string") return false;
  const n = v.length;
  // n UTF-16 units hold between n/2 and n code points.
  if (n === 0 || n > 2 * ID_MAX_CHARS || !ID_RE.test(v)) return false;
  return n <= ID_MAX_CHARS || codePoints(v) <= ID_MAX_CHARS;
}

/** Code points of a string (a surrogate pair is one, a lone surrogate too). */
function codePoints(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length - 1; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n--;
        i++;
      }
    }
  }
  return n;
}

const CHAR_NAMES = new Map<number, string>([
  [0x00, "NUL"],
  [0x09, "tab"],
  [0x0a, "line feed"],
  [0x0b, "vertical tab"],
  [0x0c, "form feed"],
  [0x0d, "carriage return"],
  [0x1b, "escape"],
  [0x7f, "delete"],
  [0x85, "next line"],
  [0x20, "space"],
  [0xa0, "no-break space"],
  [0xfeff, "byte-order mark"],
]);
const SPACE_RE = new RegExp(`[${ID_SPACE}]`);
/**
 * What quoteId escapes: the refused characters, invisible ones (white space
 * other than U+0020, zero-width characters U+200B-U+200F, U+2060-U+2064), and
 * `\\` and `"` (so the escapes are unambiguous).
 */
const UNSAFE_RE = new RegExp(
  `[${ID_FORBIDDEN}${ID_SPACE.slice(1)}\\u200B-\\u200F\\u2060-\\u2064\\uD800-\\uDFFF\\\\"]`,
  "gu",
);

const hex = (c: number) => `U+${c.toString(16).toUpperCase().padStart(4, "0")}`;

/**
 * `v` quoted for a message, JSON-style: refused and invisible characters
 * as \\uXXXX, so no raw control byte reaches a log line or a terminal and
 * the culprit is visible; values longer than 48 UTF-16 units are cut to 40
 * and "...".
 */
export function quoteId(v: string): string {
  let s = v.length > 48 ? v.slice(0, 40) : v;
  if (s.length < v.length && /[\uD800-\uDBFF]$/.test(s)) s = s.slice(0, -1);
  const q = s.replace(UNSAFE_RE, (c) =>
    c === "\\" || c === '"' ? `\\${c}` : `\\u${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}`,
  );
  return `"${q}${s.length < v.length ? "..." : ""}"`;
}

/**
 * Why `v` is not a valid id, as the end of a message ("got ..."), or
 * undefined when it is one. Positions count characters (code points) from 1.
 */
function idProblem(v: unknown): string | undefined {
  if (isId(v)) return undefined;
  if (typeof v !== "string") return `got ${describeValue(v)}, not a string`;
  if (v === "") return "got an empty string";
  const n = codePoints(v);
  if (n > ID_MAX_CHARS)
    return `got ${n} characters (${quoteId(v)}), ${n - ID_MAX_CHARS} too many: shorten it to at most ${ID_MAX_CHARS} (Unicode code points)`;
  let pos = 0;
  for (const ch of v) {
    pos++;
    const c = ch.codePointAt(0) as number;
    const at = `at position ${pos} in ${quoteId(v)}`;
    if (c <= 0x1f || (c >= 0x7f && c <= 0x9f)) {
      const name = CHAR_NAMES.get(c);
      return `got a control character ${hex(c)}${name ? ` (${name})` : ""} ${at}; remove it`;
    }
    if (c >= 0xd800 && c <= 0xdfff)
      return `got an unpaired surrogate ${hex(c)} ${at}: not valid Unicode text; send the id as UTF-8`;
    if (c === 0x2028 || c === 0x2029)
      return `got a ${c === 0x2028 ? "line" : "paragraph"} separator ${hex(c)} ${at}; remove it`;
    if ((c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069))
      return `got a bidirectional control character ${hex(c)} ${at} (it reorders how text is displayed); remove it`;
  }
  const first = v.codePointAt(0) as number;
  const lastCh = [...v.slice(-2)].at(-1) as string;
  const last = lastCh.codePointAt(0) as number;
  const space = (c: number) => `${CHAR_NAMES.get(c) ?? "white space"} ${hex(c)}`;
  if (SPACE_RE.test(String.fromCodePoint(first)))
    return `got a leading ${space(first)} in ${quoteId(v)}; remove it`;
  if (SPACE_RE.test(lastCh)) return `got a trailing ${space(last)} in ${quoteId(v)}; remove it`;
  return `got ${quoteId(v)}`;
}

/**
 * A value as a message shows it ("got ..."): short strings quoted, anything
 * else named by its kind, so no message carries a whole record.
 */
export function describeValue(v: unknown): string {
  if (v === undefined) return "nothing";
  if (v === null) return "null";
  if (typeof v === "string") return `"${v.length > 40 ? `${v.slice(0, 40)}...` : v}"`;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (Array.isArray(v)) return "an array";
  return typeof v;
}

/** The TypeBox kind of id fields: decoders recognise it to explain a refused id with `idMessage`. */
export const ID_KIND = "GavelId";
// Checked by isId (code points), not TypeBox's built-in string checks (UTF-16 units).
TypeRegistry.Set(ID_KIND, (_schema, value) => isId(value));

/**
 * An id field. In the published JSON Schema: a string with minLength 1,
 * maxLength 128 (code points, as JSON Schema counts) and ID_PATTERN; at
 * runtime checked by `isId`.
 */
export const Id = (description: string) =>
  Type.Unsafe<string>({
    [Kind]: ID_KIND,
    minLength: 1,
    maxLength: ID_MAX_CHARS,
    pattern: ID_PATTERN,
    description: `${description}. Opaque text: 1-${ID_MAX_CHARS} printable characters, no leading or trailing spaces`,
    type: "string",
  });

/**
 * An id as one segment of an S3 object key, a file name or a metric label
 * value: percent-encoded UTF-8 (encodeURIComponent, plus `!'()*.~`), so the
 * result is only `A-Z a-z 0-9 - _ %`: no `/`, no `.`/`..` segment, nothing a
 * shell, a URL or S3 treats specially; `decodeURIComponent` gives the id
 * back. Never build a key, a path or a label from a raw id.
 */
export function idKeySegment(id: string): string {
  return encodeURIComponent(id).replace(
    /[!'()*.~]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0")}`,
  );
}

/** The message for an invalid id field (what is wrong and how to fix it). */
export function idMessage(field: string, v: unknown): string {
  return `${field}: must be 1-${ID_MAX_CHARS} printable characters without leading or trailing spaces; ${idProblem(v) ?? "got a valid id"}`;
}

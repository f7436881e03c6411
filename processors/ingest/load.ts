import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import type { LoadCliOptions } from "../cli.ts";

export interface LoadResult {
  /** Bids the ingest API acknowledged (202). */
  readonly accepted: number;
  /** Bids refused as invalid (400), with the line numbers on stderr. */
  readonly rejected: number;
  /** Lines that could not be parsed from the file. */
  readonly unparsable: number;
  /** Bids whose request failed for other reasons (auth, server) after retries. */
  readonly failed: number;
}

/** Splits one CSV line (RFC 4180 quoting). */
export function splitCsvLine(line: string): string[] {
  const out: string[] = [];
  let cur = "";
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      out.push(cur);
      cur = "";
    } else cur += c;
  }
  out.push(cur);
  return out;
}

const NUMERIC = new Set(["amount"]);

/** A CSV row as a bid submission: empty cells are absent, `amount` becomes a number when it is one. */
export function csvRecord(header: readonly string[], cells: readonly string[]): Record<string, unknown> {
  const rec: Record<string, unknown> = {};
  header.forEach((h, i) => {
    const v = cells[i];
    if (v === undefined || v === "") return;
    rec[h] = NUMERIC.has(h) && /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : v;
  });
  return rec;
}

interface Line {
  readonly line: number;
  readonly bid: Record<string, unknown>;
}

async function* readBids(file: string, format: "csv" | "ndjson", onBad: (line: number, msg: string) => void) {
  const input = file === "-" ? process.stdin : createReadStream(file);
  const rl = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  let header: string[] | undefined;
  let n = 0;
  for await (const text of rl) {
    n++;
    if (text.trim() === "") continue;
    if (format === "csv") {
      if (!header) {
        header = splitCsvLine(text).map((h) => h.trim());
        continue;
      }
      yield { line: n, bid: csvRecord(header, splitCsvLine(text)) } satisfies Line;
    } else {
      try {
        const v = JSON.parse(text) as unknown;
        if (v === null || typeof v !== "object" || Array.isArray(v)) throw new Error("not a JSON object");
        yield { line: n, bid: v as Record<string, unknown> } satisfies Line;
      } catch (err) {
        onBad(n, (err as Error).message);
      }
    }
  }
}

/**
 * `gavel load FILE`: posts the bids in batches to `POST /v1/bids:batch`. A
 * batch refused with 400 is split and retried bid by bid, so one bad line
 * costs only itself; 503 is retried after Retry-After.
 */
export async function loadFile(file: string, opts: LoadCliOptions): Promise<LoadResult> {
  const format = opts.format ?? (file.endsWith(".csv") ? "csv" : "ndjson");
  let accepted = 0;
  let rejected = 0;
  let unparsable = 0;
  let failed = 0;
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (opts.apiKey) headers.authorization = `Bearer ${opts.apiKey}`;
  const base = opts.url.replace(/\/$/, "");

  async function post(path: string, body: unknown): Promise<{ status: number; json: unknown }> {
    for (let attempt = 0; ; attempt++) {
      const r = await fetch(`${base}${path}`, { method: "POST", headers, body: JSON.stringify(body) });
      const json = (await r.json().catch(() => ({}))) as unknown;
      if (r.status === 503 && attempt < 30) {
        const wait = Number(r.headers.get("retry-after") ?? "1");
        await new Promise((res) => setTimeout(res, Math.max(0.1, wait) * 1000));
        continue;
      }
      return { status: r.status, json };
    }
  }

  async function send(batch: Line[]): Promise<void> {
    const r = await post("/v1/bids:batch", { bids: batch.map((l) => l.bid) });
    if (r.status === 202) {
      accepted += batch.length;
      return;
    }
    if (r.status === 400 && batch.length > 1) {
      for (const l of batch) await send([l]);
      return;
    }
    const msg = (r.json as { details?: { message: string }[]; message?: string }) ?? {};
    const why = msg.details?.[0]?.message ?? msg.message ?? `HTTP ${r.status}`;
    if (r.status === 400) {
      rejected += batch.length;
      process.stderr.write(`line ${batch[0]?.line}: ${why}\n`);
    } else {
      failed += batch.length;
      process.stderr.write(`lines ${batch[0]?.line}..${batch.at(-1)?.line}: ${why}\n`);
      if (r.status === 401 || r.status === 403) throw new Error(`ingest refused the API key: ${why}`);
    }
  }

  let batch: Line[] = [];
  for await (const l of readBids(file, format, (line, msg) => {
    unparsable++;
    process.stderr.write(`line ${line}: ${msg}\n`);
  })) {
    if (l.bid.source === undefined) l.bid.source = opts.source;
    batch.push(l);
    if (batch.length >= opts.batchSize) {
      await send(batch);
      batch = [];
    }
  }
  if (batch.length > 0) await send(batch);
  return { accepted, rejected, unparsable, failed };
}

/**
 * `node --expose-gc bench/module-rss.ts MODULE...`: the resident set size and
 * the JavaScript heap after importing each module in turn (packages by name,
 * files by path from the repository root), after a full collection: what a
 * processor's idle memory is made of before it reads a record.
 *
 *   node --expose-gc bench/module-rss.ts kafkajs pg @aws-sdk/client-s3 fastify \
 *     ./lib/telemetry.ts ./processors/runtime/run.ts ./processors/bid-processor/main.ts
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const mib = (n: number) => Math.round(n / 1_048_576);
const gc = (globalThis as { gc?: () => void }).gc;

function line(what: string): string {
  gc?.();
  const m = process.memoryUsage();
  return `${what.padEnd(44)} rss ${String(mib(m.rss)).padStart(4)} MiB   heap used ${String(mib(m.heapUsed)).padStart(4)} MiB`;
}

const modules = process.argv.slice(2);
if (modules.length === 0) {
  process.stderr.write("usage: node --expose-gc bench/module-rss.ts MODULE... (package names or ./paths)\n");
  process.exit(2);
}
if (!gc) process.stderr.write("(without --expose-gc the figures include garbage not yet collected)\n");
const out = [line("node alone")];
for (const m of modules) {
  await import(m.startsWith(".") || m.startsWith("/") ? pathToFileURL(resolve(m)).href : m);
  out.push(line(`+ ${m}`));
}
process.stdout.write(`${out.join("\n")}\n`);

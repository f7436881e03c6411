/**
 * docs/configuration.md, generated from `ENV` (api/env.ts), the single
 * source: the table people read and the names processes read and the
 * operator writes cannot drift apart. api/env.test.ts fails when the
 * checked-in file differs; run `node api/env-doc.ts` after changing `ENV`.
 */
import { writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { ENV, type EnvVar } from "./env.ts";

/** The generated file, from the repository root. */
export const CONFIGURATION_DOC = "docs/configuration.md";

/** Text for one table cell: a `|` would end the cell early. */
function cell(text: string): string {
  return text.replaceAll("|", "\\|");
}

function row(v: EnvVar): string {
  const cells = [
    `\`${v.name}\``,
    v.readBy,
    v.default === undefined ? "" : `\`${v.default}\``,
    v.doc,
    v.secret ? "yes" : "",
  ];
  return `| ${cells.map(cell).join(" | ")} |`;
}

/** The whole Markdown file. */
export function renderConfigurationDoc(): string {
  const vars: readonly EnvVar[] = Object.values(ENV);
  return [
    "# Configuration",
    "",
    "<!-- Generated from api/env.ts by `node api/env-doc.ts`: edit ENV there, not this file. -->",
    "",
    "Every environment variable a Gavel process reads in production. The",
    "operator writes them into the pods it makes (a unit test checks that a pod",
    "gets no other name), `gavel testenv up` writes the connection variables to",
    "`.testenv/env`, and the processes read them through `api/env.ts`. An empty",
    "value counts as unset. A secret is set only from a Secret reference and",
    "is never logged or put in metrics, status or events.",
    "",
    "**Read by**: `all` is every processor (ingest, bid-processor,",
    "silver-writer, bronze-archiver); `operator` is `gavel operator`; `rollup`",
    "and `fraud train` run in the pipeline's rollup CronJob; `migrate`, `gavel",
    "load` and `gavel generate` are commands.",
    "",
    "| Variable | Read by | Default | Meaning | Secret |",
    "| --- | --- | --- | --- | --- |",
    ...vars.map(row),
    "",
    "Development tools (`gavel testenv`, `gavel cluster`, the benchmarks) have",
    "their own settings (`GAVEL_CACHE`, `GAVEL_TESTENV_DIR`, ... in",
    "[operations.md](operations.md), `GAVEL_CLUSTER_*` in",
    "[local-cluster.md](local-cluster.md)); no pod reads them.",
    "",
  ].join("\n");
}

export async function writeConfigurationDoc(
  path = fileURLToPath(new URL(`../${CONFIGURATION_DOC}`, import.meta.url)),
): Promise<string> {
  await writeFile(path, renderConfigurationDoc());
  return path;
}

if (import.meta.main) process.stdout.write(`wrote ${await writeConfigurationDoc()}\n`);

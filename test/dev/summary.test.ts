import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { shellQuote } from "./summary.ts";

describe("shellQuote (the curl examples of the dev summary)", () => {
  it("gives the shell back exactly the text, quotes and Unicode included", () => {
    for (const s of ["plain", "d'artagnan", "''", `{"bidder_id":"O'Brien 🦊","x":"$HOME \`id\`"}`, ""]) {
      expect(execFileSync("sh", ["-c", `printf %s ${shellQuote(s)}`], { encoding: "utf8" })).toBe(s);
    }
  });
});

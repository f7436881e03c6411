import type { Command } from "commander";
import { describe, expect, it } from "vitest";
import { buildProgram } from "./main.ts";

function capture(program: Command): { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  const apply = (c: Command): void => {
    c.exitOverride();
    c.configureOutput({ writeOut: (s) => out.push(s), writeErr: (s) => err.push(s) });
    for (const sub of c.commands) apply(sub);
  };
  apply(program);
  return { out, err };
}

describe("gavel CLI", () => {
  it("--help lists every subcommand", async () => {
    const program = buildProgram();
    const { out } = capture(program);
    await expect(program.parseAsync(["node", "gavel", "--help"])).rejects.toMatchObject({
      code: "commander.helpDisplayed",
    });
    const help = out.join("");
    for (const name of program.commands.map((c) => c.name())) expect(help).toContain(name);
    expect(help).toMatch(/testenv/);
  });

  it("a bad flag prints the error and the command's usage", async () => {
    const program = buildProgram();
    const { err } = capture(program);
    await expect(program.parseAsync(["node", "gavel", "testenv", "up", "--bogus"])).rejects.toMatchObject({
      code: "commander.unknownOption",
      exitCode: 1,
    });
    const text = err.join("");
    expect(text).toContain("unknown option '--bogus'");
    expect(text).toContain("Usage: gavel testenv up [options]");
  });
});

import { describe, expect, it } from "vitest";
import { devTool } from "./dev-tool.ts";

describe("devTool", () => {
  it("says a development tool is not in the image when its module is missing", async () => {
    // A specifier tsc cannot check: the module is missing on purpose.
    const missing = "../test/env/not-in-the-image.ts";
    await expect(devTool("testenv", () => import(missing))).rejects.toThrow(
      "'gavel testenv' is a development tool and is not in this image",
    );
  });

  it("passes other failures through, and the module when it loads", async () => {
    await expect(devTool("x", () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    expect(await devTool("cluster", () => import("./dev-tool.ts"))).toHaveProperty("devTool");
  });
});

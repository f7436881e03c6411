import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: [
            "{api,cli,lib,operator,processors,cdk8s,scripts,bench}/**/*.test.ts",
            "test/{dev,generate}/**/*.test.ts",
          ],
          environment: "node",
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          environment: "node",
          globalSetup: ["test/integration/global-setup.ts"],
          setupFiles: ["test/integration/setup-env.ts"],
          testTimeout: 120_000,
          hookTimeout: 300_000,
          // Services are shared; files run one at a time to stay inside 2 cores.
          fileParallelism: false,
        },
      },
    ],
  },
});

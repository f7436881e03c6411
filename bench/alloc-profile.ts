/**
 * Preload (`node --import bench/alloc-profile.ts`) the bench gives processors
 * under `--alloc-profile`: samples every allocation, those garbage collected since
 * included, and writes the sampled profile to $GAVEL_BENCH_ALLOC_PROFILE when
 * the process is told to stop (SIGTERM) or runs out of work. `node
 * bench/profile.ts FILE` then says which functions allocate the most: what
 * the garbage collector has to clean up (a `--heap-prof` profile shows only
 * what is still live at exit).
 */
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";

const out = process.env.GAVEL_BENCH_ALLOC_PROFILE;
if (out) {
  const session = new Session();
  session.connect();
  await session.post("HeapProfiler.enable");
  await session.post("HeapProfiler.startSampling", {
    samplingInterval: 32_768,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  let written = false;
  const write = async () => {
    if (written) return;
    written = true;
    const { profile } = await session.post("HeapProfiler.stopSampling");
    writeFileSync(out, JSON.stringify(profile));
  };
  // Before the processor's own handler starts its shutdown.
  process.prependListener("SIGTERM", () => void write());
  process.on("beforeExit", () => void write());
}

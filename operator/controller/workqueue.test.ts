import { describe, expect, it } from "vitest";
import { WorkQueue } from "./workqueue.ts";

describe("WorkQueue", () => {
  it("de-duplicates queued keys", async () => {
    const q = new WorkQueue();
    q.add("a");
    q.add("a");
    q.add("b");
    expect(q.length).toBe(2);
    expect(await q.get()).toBe("a");
    expect(await q.get()).toBe("b");
  });

  it("never hands a key in process to a second worker, and re-queues it when done", async () => {
    const q = new WorkQueue();
    q.add("a");
    const k = await q.get();
    q.add("a"); // changed while processing
    expect(q.length).toBe(0);
    let second: string | undefined;
    const p = q.get().then((x) => {
      second = x;
    });
    await new Promise((r) => setTimeout(r, 10));
    expect(second).toBeUndefined();
    q.done(k!);
    await p;
    expect(second).toBe("a");
  });

  it("backs off exponentially and forgets", () => {
    const q = new WorkQueue({ baseDelayMs: 100, maxDelayMs: 350 });
    expect([
      q.addRateLimited("a"),
      q.addRateLimited("a"),
      q.addRateLimited("a"),
      q.addRateLimited("a"),
    ]).toEqual([100, 200, 350, 350]);
    q.forget("a");
    expect(q.addRateLimited("a")).toBe(100);
    void q.shutDown();
  });

  it("addAfter delivers later, earliest wins", async () => {
    const q = new WorkQueue();
    q.addAfter("a", 200);
    q.addAfter("a", 20);
    const t0 = Date.now();
    expect(await q.get()).toBe("a");
    expect(Date.now() - t0).toBeLessThan(150);
  });

  it("shutDown releases waiting workers and waits for in-flight keys", async () => {
    const q = new WorkQueue();
    const waiting = q.get();
    q.add("x");
    expect(await waiting).toBe("x");
    let drained = false;
    const s = q.shutDown().then(() => {
      drained = true;
    });
    await new Promise((r) => setTimeout(r, 10));
    expect(drained).toBe(false);
    q.done("x");
    await s;
    expect(await q.get()).toBeUndefined();
  });
});

import type { Admin, TopicDescription, TopicSpec } from "./transport.ts";

/** What `applyTopics` will do. */
export interface TopicPlan {
  readonly create: readonly TopicSpec[];
  readonly grow: readonly { readonly name: string; readonly from: number; readonly to: number }[];
  readonly unchanged: readonly string[];
  /** Topics with more partitions than asked: Kafka cannot shrink, so they are left alone and reported. */
  readonly tooLarge: readonly { readonly name: string; readonly have: number; readonly want: number }[];
}

/**
 * Pure diff between wanted topics and what the cluster has. The replication
 * factor is clamped to the broker count (a one-broker test cluster cannot
 * hold 3 replicas); partitions only ever grow.
 */
export function planTopics(
  wanted: readonly TopicSpec[],
  existing: ReadonlyMap<string, TopicDescription>,
  brokers: number,
): TopicPlan {
  const create: TopicSpec[] = [];
  const grow: { name: string; from: number; to: number }[] = [];
  const unchanged: string[] = [];
  const tooLarge: { name: string; have: number; want: number }[] = [];
  for (const w of wanted) {
    const have = existing.get(w.name);
    if (have === undefined) {
      const rf =
        w.replicationFactor === undefined ? undefined : Math.max(1, Math.min(w.replicationFactor, brokers));
      create.push(rf === undefined ? w : { ...w, replicationFactor: rf });
    } else if (have.partitions < w.partitions) {
      grow.push({ name: w.name, from: have.partitions, to: w.partitions });
    } else {
      if (have.partitions > w.partitions)
        tooLarge.push({ name: w.name, have: have.partitions, want: w.partitions });
      unchanged.push(w.name);
    }
  }
  return { create, grow, unchanged, tooLarge };
}

/** Creates missing topics and grows existing ones; idempotent. */
export async function applyTopics(admin: Admin, wanted: readonly TopicSpec[]): Promise<TopicPlan> {
  const existing = await admin.describeTopics(wanted.map((w) => w.name));
  const plan = planTopics(wanted, existing, await admin.brokerCount());
  await admin.createTopics(plan.create);
  for (const g of plan.grow) await admin.createPartitions(g.name, g.to);
  return plan;
}

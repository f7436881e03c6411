import { allTopics, loadPipelineFile } from "../../api/v1alpha1/pipeline.ts";
import { createLogger } from "../../lib/log.ts";
import { kafkaBrokers, processorConfigFrom } from "../runtime/config.ts";
import { createTransport } from "./client.ts";
import { applyTopics } from "./topics.ts";
import type { TopicSpec } from "./transport.ts";

/** `gavel topics apply -f pipeline`: the same names, partitions and configs the operator puts in KafkaTopics. */
export async function topicsApply(file: string): Promise<void> {
  const pipeline = await loadPipelineFile(file);
  const cfg = processorConfigFrom(pipeline);
  const logger = createLogger("topics");
  const transport = await createTransport({ brokers: kafkaBrokers(cfg), clientId: "gavel-topics", logger });
  const admin = await transport.admin();
  try {
    const wanted: TopicSpec[] = allTopics(pipeline).map((t) => ({
      name: t.name,
      partitions: t.partitions,
      replicationFactor: t.replicas,
      configs: t.config,
    }));
    const plan = await applyTopics(admin, wanted);
    for (const t of plan.create) process.stdout.write(`created ${t.name} (partitions ${t.partitions})\n`);
    for (const g of plan.grow) process.stdout.write(`grew ${g.name} from ${g.from} to ${g.to} partitions\n`);
    for (const n of plan.unchanged) process.stdout.write(`unchanged ${n}\n`);
    for (const t of plan.tooLarge)
      process.stderr.write(
        `warning: ${t.name} has ${t.have} partitions, more than ${t.want}; Kafka cannot shrink topics\n`,
      );
  } finally {
    await admin.close();
  }
}

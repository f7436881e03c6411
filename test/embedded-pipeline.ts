/**
 * The embedded setting the processors run in without services: `gavel dev`
 * (test/dev/) and the unit tests of the runtime and the processors, which
 * run them on the in-memory Kafka (kafka/memory.ts) as controller-runtime's
 * tests run controllers on its fake client.
 */
import { type AuctionPipeline, allTopics, parsePipeline } from "../api/v1alpha1/pipeline.ts";
import type { Logger } from "../lib/log.ts";
import { MemoryBroker, MemoryTransport } from "../processors/kafka/memory.ts";

/** An AuctionPipeline resource for the embedded backends (in-memory log, PGlite, a folder). */
export function embeddedPipelineSpec(name: string, partitions: number) {
  // Nothing is looked up by these names: the embedded backends need no Secrets.
  const secretRef = { name: "embedded" };
  const kafka = { clusterName: "embedded", bootstrapServers: "embedded:9092" };
  const storage = { postgres: { secretRef }, s3: { bucket: "gavel-dev", credentialsSecretRef: secretRef } };
  const spec = { kafka, topics: { partitions, replicas: 1 }, storage };
  return { apiVersion: "gavel.dev/v1alpha1", kind: "AuctionPipeline", metadata: { name }, spec };
}

/** `embeddedPipelineSpec`, parsed (defaults filled in). */
export function embeddedPipeline(name: string, partitions: number): AuctionPipeline {
  return parsePipeline(embeddedPipelineSpec(name, partitions), `embedded pipeline ${name}`);
}

/** An in-memory transport whose broker holds every topic of `pipeline`. */
export async function memoryTransportWithTopics(
  pipeline: AuctionPipeline,
  logger: Logger,
): Promise<MemoryTransport> {
  const transport = new MemoryTransport(new MemoryBroker({ logger }));
  const admin = await transport.admin();
  await admin.createTopics(
    allTopics(pipeline).map((t) => ({ name: t.name, partitions: t.partitions, configs: t.config })),
  );
  await admin.close();
  return transport;
}

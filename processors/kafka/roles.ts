/**
 * The Gavel processes that talk to Kafka, as `gavel kafka acls --role` names
 * them (kept apart from acls.ts so the CLI can list them without loading it).
 */
export const KAFKA_CLIENT_ROLES = [
  "ingest",
  "bid-processor",
  "silver-writer",
  "bronze-archiver",
  /** The operator's own topic provisioning (`spec.kafka.topics.provisioner: gavel`). */
  "operator",
  /** `gavel topics apply -f pipeline.yaml`. */
  "topics-apply",
  /** `gavel generate --to kafka`. */
  "generate",
] as const;
export type KafkaClientRole = (typeof KAFKA_CLIENT_ROLES)[number];

/** Output formats of `gavel kafka acls`. */
export const ACL_FORMATS = ["table", "kafka-acls", "strimzi", "json"] as const;
export type AclFormat = (typeof ACL_FORMATS)[number];

export const STRIMZI_AUTHENTICATIONS = ["scram-sha-512", "tls"] as const;
export type StrimziAuthentication = (typeof STRIMZI_AUTHENTICATIONS)[number];

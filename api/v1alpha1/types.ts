/**
 * The AuctionPipeline API, v1alpha1: defined ONCE here with TypeBox. The
 * TypeScript types (`Static<>`), the runtime validation of pipeline files
 * (`pipeline.ts`) and the CRD's openAPIV3Schema (`api/v1alpha1/crd.ts`) all come
 * from these schemas. Descriptions are written for users: they are what
 * `kubectl explain auctionpipeline.spec` prints.
 *
 * Conventions (so TypeBox and the API server agree):
 * - A field with a `default` is listed as required here, so `Static<>` gives
 *   the resolved type after defaulting; the CRD generator drops such fields
 *   from `required`, so users may omit them.
 * - Objects that hold defaults default to `{}` (never to a filled object):
 *   the API server and TypeBox then fill nested defaults the same way.
 * - Cross-field rules are CEL `x-kubernetes-validations` (kept here, next to
 *   the fields they check); `pipeline.ts` re-checks them in TypeScript for
 *   files that never reach an API server (`gavel synth`, processors).
 */
import { type Static, type TSchema, Type } from "@sinclair/typebox";

export const GROUP = "gavel.dev";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = "AuctionPipeline";
export const PLURAL = "auctionpipelines";
export const SINGULAR = "auctionpipeline";
export const SHORT_NAMES = ["ap"] as const;
/** The default image that runs the operator and every processor. */
export const DEFAULT_IMAGE = "ghcr.io/gavel-dev/gavel:0.1.0";

/** A Kubernetes CEL validation rule (`x-kubernetes-validations` entry). */
export interface CelRule {
  readonly rule: string;
  readonly message: string;
  readonly fieldPath?: string;
  readonly reason?:
    | "FieldValueInvalid"
    | "FieldValueForbidden"
    | "FieldValueRequired"
    | "FieldValueDuplicate";
}

function cel(...rules: CelRule[]): { "x-kubernetes-validations": CelRule[] } {
  return { "x-kubernetes-validations": rules };
}

/** String enum as a union of literals (TypeBox checks it; the CRD generator maps it to `enum`). */
function StringEnum<const T extends readonly string[]>(values: T, options: Record<string, unknown> = {}) {
  return Type.Union(
    values.map((v) => Type.Literal(v)),
    options,
  ) as unknown as TSchema & { static: T[number] };
}

// ---------------------------------------------------------------------------
// Shared pieces
// ---------------------------------------------------------------------------

const DNS_LABEL = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
const DNS_SUBDOMAIN = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
const QUANTITY = "^[0-9]+(\\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$";
const KAFKA_TOPIC_NAME = "^[a-zA-Z0-9._-]+$";

export const SecretRef = Type.Object(
  {
    name: Type.String({
      description: "Name of a Secret in the pipeline's namespace.",
      minLength: 1,
      maxLength: 253,
      pattern: DNS_SUBDOMAIN,
    }),
  },
  { description: "A reference to a Secret in the pipeline's namespace." },
);
export type SecretRef = Static<typeof SecretRef>;

const Quantity = (description: string, def?: string) =>
  Type.String({
    description,
    maxLength: 32,
    pattern: QUANTITY,
    ...(def === undefined ? {} : { default: def }),
  });

export const Resources = Type.Object(
  {
    requests: Type.Object(
      {
        cpu: Quantity("CPU request, e.g. `100m` (a tenth of a core) or `1`.", "100m"),
        memory: Quantity("Memory request, e.g. `256Mi`.", "256Mi"),
      },
      { default: {}, description: "Resources the scheduler reserves for each pod." },
    ),
    limits: Type.Object(
      {
        cpu: Type.Optional(
          Quantity("CPU limit. Unset by default: throttling hurts latency more than it saves."),
        ),
        memory: Quantity("Memory limit; the pod is restarted when it uses more.", "512Mi"),
      },
      { default: {}, description: "Upper bounds for each pod." },
    ),
  },
  { default: {}, description: "Compute resources of each pod (Kubernetes quantities)." },
);
export type Resources = Static<typeof Resources>;

// ---------------------------------------------------------------------------
// Kafka and topics
// ---------------------------------------------------------------------------

/** Who creates the pipeline's topics in Kafka (`spec.kafka.topics.provisioner`). */
export const TOPIC_PROVISIONERS = ["strimzi", "gavel"] as const;
export type TopicProvisioner = (typeof TOPIC_PROVISIONERS)[number];
export const PROVISIONER_IMMUTABLE_MESSAGE =
  "provisioner cannot be changed after creation: the other provisioner would not adopt the existing topics (and removing the KafkaTopics could delete the topics in Kafka); keep the current value, or create a new pipeline";
export const CLUSTER_NAME_REQUIRED_MESSAGE =
  "clusterName is required when topics.provisioner is strimzi (the default): set it to the name of the Strimzi Kafka cluster, or set topics.provisioner: gavel to let the operator create the topics through the Kafka admin API";

export const KafkaTopicsProvisioning = Type.Object(
  {
    provisioner: StringEnum(TOPIC_PROVISIONERS, {
      description:
        "Who creates the topics in Kafka. `strimzi` (default): the operator applies a Strimzi KafkaTopic per topic and the Strimzi topic operator of `clusterName` creates it. `gavel`: the operator creates the topics itself through the Kafka admin API (`bootstrapServers`, `authSecretRef`), grows their partitions and sets the configs the pipeline names; it never shrinks or deletes a topic (deleting the pipeline keeps the topics and their data). Cannot be changed after creation.",
      default: "strimzi",
      ...cel({ rule: "self == oldSelf", message: PROVISIONER_IMMUTABLE_MESSAGE }),
    }),
  },
  { default: {}, description: "How the pipeline's topics (`spec.topics`) are created in this cluster." },
);

export const KafkaSpec = Type.Object(
  {
    clusterName: Type.Optional(
      Type.String({
        description:
          "Name of the Strimzi `Kafka` cluster that owns the topics. Set as the `strimzi.io/cluster` label on every KafkaTopic, so the Strimzi topic operator of that cluster creates them. The topic operator must watch this pipeline's namespace. Required with `topics.provisioner: strimzi` (the default), unused with `gavel`.",
        minLength: 1,
        maxLength: 63,
        pattern: DNS_LABEL,
      }),
    ),
    bootstrapServers: Type.String({
      description:
        "Comma-separated `host:port` list the processors connect to, e.g. `my-cluster-kafka-bootstrap.kafka:9092`.",
      minLength: 1,
      maxLength: 1024,
      pattern: "^[^,\\s]+:[0-9]+(,[^,\\s]+:[0-9]+)*$",
    }),
    authSecretRef: Type.Optional(
      Type.Object(
        {
          name: SecretRef.properties.name,
        },
        {
          description:
            "Secret with the client's SASL/TLS settings, passed to processors as environment variables (`envFrom`): `KAFKA_SASL_MECHANISM` (plain, scram-sha-256, scram-sha-512), `KAFKA_SASL_USERNAME`, `KAFKA_SASL_PASSWORD`, `KAFKA_TLS` (`true` to use TLS), `KAFKA_TLS_CA` (PEM). Omit for a plaintext listener. With `topics.provisioner: gavel` the operator reads this Secret too, to connect as the same client.",
        },
      ),
    ),
    topics: KafkaTopicsProvisioning,
  },
  {
    description: "The Kafka cluster the pipeline reads from and writes to.",
    ...cel({
      // has() guards: the API server also checks rules before nested defaults exist.
      rule: "has(self.clusterName) || (has(self.topics) && has(self.topics.provisioner) && self.topics.provisioner == 'gavel')",
      message: CLUSTER_NAME_REQUIRED_MESSAGE,
      fieldPath: ".clusterName",
      reason: "FieldValueRequired",
    }),
  },
);
export type KafkaSpec = Static<typeof KafkaSpec>;

const Partitions = (description: string) =>
  Type.Integer({
    description: `${description} Partitions can only be increased: Kafka cannot remove them, and records keyed by auction_id would move to other partitions.`,
    minimum: 1,
    maximum: 1000,
    ...cel({
      rule: "self >= oldSelf",
      message:
        "partitions can only be increased (Kafka cannot remove partitions): keep the current value or a larger one",
    }),
  });
const Replicas = (description: string) => Type.Integer({ description, minimum: 1, maximum: 10 });
const RetentionMs = (description: string) =>
  Type.Integer({ description, minimum: -1, maximum: 315_360_000_000 });
const TopicConfig = (description: string) =>
  Type.Record(Type.String({ maxLength: 128 }), Type.String({ maxLength: 1024 }), {
    description,
    maxProperties: 32,
  });

export const TopicOverride = Type.Object(
  {
    name: Type.Optional(
      Type.String({
        description:
          "Kafka topic name to use instead of `<pipeline-name>.<topic>`, e.g. to share a topic with another system.",
        minLength: 1,
        maxLength: 249,
        pattern: KAFKA_TOPIC_NAME,
      }),
    ),
    partitions: Type.Optional(Partitions("Partitions of this topic (overrides `topics.partitions`).")),
    replicas: Type.Optional(Replicas("Replication factor of this topic (overrides `topics.replicas`).")),
    retentionMs: Type.Optional(
      RetentionMs(
        "Retention of this topic in milliseconds, -1 for unlimited (overrides `topics.retentionMs`).",
      ),
    ),
    config: Type.Optional(
      TopicConfig("Extra Kafka topic configuration of this topic, merged over `topics.config`."),
    ),
  },
  { description: "Per-topic overrides; unset fields fall back to the `topics` defaults." },
);
export type TopicOverride = Static<typeof TopicOverride>;

/** The logical topics of a pipeline (domain.md), by the key used in `spec.topics.overrides`. */
export const LOGICAL_TOPICS = {
  auctions: { suffix: "auctions", compacted: true },
  users: { suffix: "users", compacted: true },
  bids: { suffix: "bids", compacted: false },
  bidsAccepted: { suffix: "bids.accepted", compacted: false },
  bidsRejected: { suffix: "bids.rejected", compacted: false },
  prices: { suffix: "prices", compacted: true },
  fraudAlerts: { suffix: "fraud-alerts", compacted: false },
  transactions: { suffix: "transactions", compacted: false },
} as const;
export type LogicalTopicKey = keyof typeof LOGICAL_TOPICS;
export type TopicSuffix = (typeof LOGICAL_TOPICS)[LogicalTopicKey]["suffix"];

export const ExtraTopic = Type.Object(
  {
    name: Type.String({
      description: "Full Kafka topic name.",
      minLength: 1,
      maxLength: 249,
      pattern: KAFKA_TOPIC_NAME,
    }),
    partitions: Type.Optional(Partitions("Partitions (default `topics.partitions`).")),
    replicas: Type.Optional(Replicas("Replication factor (default `topics.replicas`).")),
    retentionMs: Type.Optional(RetentionMs("Retention in milliseconds (default `topics.retentionMs`).")),
    compacted: Type.Boolean({ description: "Use `cleanup.policy=compact`.", default: false }),
    config: Type.Optional(TopicConfig("Extra Kafka topic configuration, merged over `topics.config`.")),
  },
  { description: "An additional topic managed with the pipeline." },
);
export type ExtraTopic = Static<typeof ExtraTopic>;

export const TopicsSpec = Type.Object(
  {
    partitions: Partitions(
      "Default partition count of every topic. Bounds the parallelism of consumers: a consumer group never has more busy members than partitions.",
    ),
    replicas: Replicas("Default replication factor of every topic (use 3 in production)."),
    retentionMs: RetentionMs(
      "Default retention of the non-compacted topics in milliseconds (default 7 days); -1 keeps records forever. Compacted topics (auctions, users, prices) keep the latest record per key.",
    ),
    config: Type.Optional(TopicConfig("Extra Kafka topic configuration applied to every topic.")),
    overrides: Type.Object(
      {
        auctions: Type.Optional(TopicOverride),
        users: Type.Optional(TopicOverride),
        bids: Type.Optional(TopicOverride),
        bidsAccepted: Type.Optional(TopicOverride),
        bidsRejected: Type.Optional(TopicOverride),
        prices: Type.Optional(TopicOverride),
        fraudAlerts: Type.Optional(TopicOverride),
        transactions: Type.Optional(TopicOverride),
      },
      {
        default: {},
        description:
          "Per-topic overrides of name, partitions, replicas, retention and config, by logical topic: auctions, users, bids, bidsAccepted (`bids.accepted`), bidsRejected (`bids.rejected`, the dead-letter topic), prices, fraudAlerts (`fraud-alerts`), transactions.",
      },
    ),
    extra: Type.Array(ExtraTopic, {
      default: [],
      maxItems: 32,
      description:
        "Additional topics managed with the pipeline (e.g. for downstream consumers). With the Strimzi provisioner they are deleted with the pipeline if the topic operator deletes topics; the gavel provisioner never deletes topics.",
      "x-kubernetes-list-type": "map",
      "x-kubernetes-list-map-keys": ["name"],
    }),
  },
  {
    default: {},
    description:
      "The pipeline's Kafka topics, `<pipeline-name>.auctions`, `.users`, `.bids`, `.bids.accepted`, `.bids.rejected`, `.prices`, `.fraud-alerts` and `.transactions`, created as Strimzi KafkaTopics or, with `kafka.topics.provisioner: gavel`, by the operator through the Kafka admin API.",
  },
);
// Effective partitions of a logical topic, in CEL (self = spec.topics).
const celPartitions = (key: string): string =>
  `(has(self.overrides.${key}) && has(self.overrides.${key}.partitions) ? self.overrides.${key}.partitions : self.partitions)`;
export const CO_PARTITIONED_MESSAGE =
  "overrides of auctions and prices partitions must equal those of bids: one partition owns an auction, so the bid-processor reads the three topics co-partitioned; set the same partitions on all three";
export const OUTPUT_PARTITIONS_MESSAGE =
  "bidsAccepted, bidsRejected, fraudAlerts and transactions need at least as many partitions as bids: the bid-processor writes each result to its input's partition number; raise their partitions";
Object.assign(
  TopicsSpec,
  cel(
    {
      // The API server checks rules against the `{}` default too, before nested defaults exist.
      rule: `!has(self.overrides) || (${celPartitions("auctions")} == ${celPartitions("bids")} && ${celPartitions("prices")} == ${celPartitions("bids")})`,
      message: CO_PARTITIONED_MESSAGE,
      fieldPath: ".overrides",
    },
    {
      rule: `!has(self.overrides) || (${["bidsAccepted", "bidsRejected", "fraudAlerts", "transactions"]
        .map((k) => `${celPartitions(k)} >= ${celPartitions("bids")}`)
        .join(" && ")})`,
      message: OUTPUT_PARTITIONS_MESSAGE,
      fieldPath: ".overrides",
    },
  ),
);
// Defaults set here (not in the helper functions) so overrides stay unset.
TopicsSpec.properties.partitions.default = 12;
TopicsSpec.properties.replicas.default = 3;
TopicsSpec.properties.retentionMs.default = 604_800_000;
export type TopicsSpec = Static<typeof TopicsSpec>;

// ---------------------------------------------------------------------------
// Processors
// ---------------------------------------------------------------------------

export const Autoscaling = Type.Object(
  {
    cpuUtilizationPercent: Type.Integer({
      description: "Target average CPU utilisation (percent of the CPU request) per pod.",
      minimum: 1,
      maximum: 100,
      default: 70,
    }),
    lagPerReplica: Type.Optional(
      Type.Integer({
        description:
          "Target consumer lag (records) per replica, as the external metric `gavel_consumer_lag` (labels `pipeline`, `processor`), e.g. served by Prometheus Adapter from the processors' metrics. Unset: scale on CPU only. Ignored for ingest.",
        minimum: 1,
        maximum: 100_000_000,
      }),
    ),
    scaleDownStabilizationSeconds: Type.Integer({
      description:
        "How long load must stay low before replicas are removed (avoids flapping and rebalances).",
      minimum: 0,
      maximum: 3600,
      default: 300,
    }),
  },
  { default: {}, description: "HorizontalPodAutoscaler targets; scaling uses the highest recommendation." },
);
export type Autoscaling = Static<typeof Autoscaling>;

export const ProcessorSpec = Type.Object(
  {
    image: Type.Optional(
      Type.String({
        description: "Image for this processor (default `spec.image`).",
        minLength: 1,
        maxLength: 512,
      }),
    ),
    minReplicas: Type.Integer({
      description: "Fewest pods the autoscaler keeps.",
      minimum: 1,
      maximum: 1000,
      default: 1,
    }),
    maxReplicas: Type.Integer({
      description:
        "Most pods the autoscaler may run. For consumers (bid-processor, silver-writer, bronze-archiver) the effective maximum is clamped to the partition count of the topics they read, since extra members of a consumer group sit idle; for bid-processor a value above the `bids` partitions is rejected.",
      minimum: 1,
      maximum: 1000,
      default: 4,
    }),
    autoscaling: Autoscaling,
    resources: Resources,
    logLevel: StringEnum(["trace", "debug", "info", "warn", "error"] as const, {
      description: "Log level of the processor.",
      default: "info",
    }),
  },
  {
    description: "A processor Deployment with its autoscaler.",
    ...cel({
      rule: "!has(self.minReplicas) || !has(self.maxReplicas) || self.minReplicas <= self.maxReplicas",
      message:
        "minReplicas must be less than or equal to maxReplicas: lower minReplicas or raise maxReplicas",
      fieldPath: ".minReplicas",
    }),
  },
);
export type ProcessorSpec = Static<typeof ProcessorSpec>;

/** Processor keys in `spec.processors` and the names used on the command line and in object names. */
export const PROCESSORS = {
  ingest: { name: "ingest", consumes: [] },
  bidProcessor: { name: "bid-processor", consumes: ["auctions", "users", "bids"] },
  silverWriter: {
    name: "silver-writer",
    consumes: ["auctions", "users", "bidsAccepted", "bidsRejected", "prices", "fraudAlerts", "transactions"],
  },
  bronzeArchiver: {
    name: "bronze-archiver",
    consumes: [
      "auctions",
      "users",
      "bids",
      "bidsAccepted",
      "bidsRejected",
      "prices",
      "fraudAlerts",
      "transactions",
    ],
  },
} as const satisfies Record<string, { name: string; consumes: readonly LogicalTopicKey[] }>;
export type ProcessorKey = keyof typeof PROCESSORS;
export type ProcessorName = (typeof PROCESSORS)[ProcessorKey]["name"];
export const PROCESSOR_KEYS = Object.keys(PROCESSORS) as ProcessorKey[];

export const ProcessorsSpec = Type.Object(
  {
    ingest: Type.Optional(ProcessorSpec),
    bidProcessor: Type.Optional(ProcessorSpec),
    silverWriter: Type.Optional(ProcessorSpec),
    bronzeArchiver: Type.Optional(ProcessorSpec),
  },
  {
    description:
      "Which processors run and how. Omit the whole field to run all four with defaults; when present, only the processors listed run (use `{}` for defaults), and removing one deletes its Deployment.",
  },
);
export type ProcessorsSpec = Static<typeof ProcessorsSpec>;

// ---------------------------------------------------------------------------
// Fraud, storage, rollup
// ---------------------------------------------------------------------------

const Weight = (description: string, def: number) =>
  Type.Number({ description, minimum: 0, maximum: 1, default: def });

export const FraudModelSpec = Type.Object(
  {
    train: Type.Boolean({
      description:
        "Train a new anomaly model after each gold rollup, from the features the stream logged in silver over the last `trainingDays` (the rollup CronJob runs `gavel fraud train`).",
      default: true,
    }),
    trainingDays: Type.Integer({
      description: "Days of scored bids a model is trained on.",
      minimum: 1,
      maximum: 90,
      default: 7,
    }),
    minRows: Type.Integer({
      description: "Fewest scored bids worth training on: with fewer, no model is written.",
      minimum: 100,
      maximum: 100_000_000,
      default: 1000,
    }),
    trees: Type.Integer({ description: "Isolation Forest trees.", minimum: 10, maximum: 1000, default: 100 }),
    sampleSize: Type.Integer({
      description: "Rows each tree is grown on.",
      minimum: 16,
      maximum: 4096,
      default: 256,
    }),
    contamination: Type.Number({
      description:
        "Share of training bids taken as anomalous: the anomaly signal starts at the forest score of this upper quantile of the training bids.",
      minimum: 0.001,
      maximum: 0.5,
      default: 0.05,
    }),
    activationDelaySeconds: Type.Integer({
      description:
        "How long after training a model starts scoring (by record time), so every bid-processor replica has loaded it first: which model scored a bid then depends on the log alone.",
      minimum: 60,
      maximum: 86_400,
      default: 900,
    }),
    pollSeconds: Type.Integer({
      description: "How often bid-processors look for a new model under `<prefix>models/fraud/`.",
      minimum: 5,
      maximum: 3600,
      default: 60,
    }),
  },
  {
    default: {},
    description: "The trained anomaly model (an Isolation Forest, docs/fraud.md).",
    ...cel({
      rule: "!has(self.activationDelaySeconds) || !has(self.pollSeconds) || self.activationDelaySeconds >= 2 * self.pollSeconds",
      message:
        "activationDelaySeconds must be at least twice pollSeconds, so every replica has loaded a model before it becomes active",
      fieldPath: ".activationDelaySeconds",
    }),
  },
);
export type FraudModelSpec = Static<typeof FraudModelSpec>;

export const FraudSpec = Type.Object(
  {
    quarantineThreshold: Type.Number({
      description:
        "Fraud score (0..1) at or above which a bid is rejected with reason `fraud_quarantine`. 1 quarantines only certain fraud.",
      minimum: 0,
      maximum: 1,
      default: 0.8,
    }),
    alertThreshold: Type.Number({
      description:
        "Fraud score (0..1) at or above which a fraud alert is emitted (the bid may still be accepted).",
      minimum: 0,
      maximum: 1,
      default: 0.5,
    }),
    weights: Type.Object(
      {
        velocity: Weight("Weight of the bidder's bid velocity signal.", 0.3),
        newAccountHighBid: Weight("Weight of a new account placing a high bid.", 0.2),
        shillPattern: Weight(
          "Weight of shill patterns (a bidder who repeatedly bids on one seller's auctions and rarely wins).",
          0.2,
        ),
        amountOutlier: Weight(
          "Weight of an amount far outside the auction's or category's distribution.",
          0.2,
        ),
        lastSecondBurst: Weight("Weight of last-second bursts by linked bidders.", 0.1),
        anomaly: Weight(
          "Weight of the trained anomaly model's signal (docs/fraud.md); no effect until a model is active.",
          0.3,
        ),
      },
      {
        default: {},
        description: "Weights (0..1) of the named fraud signals; the score is the weighted sum, capped at 1.",
      },
    ),
    model: FraudModelSpec,
  },
  {
    default: {},
    description: "Fraud scoring of bids.",
    ...cel({
      rule: "!has(self.alertThreshold) || !has(self.quarantineThreshold) || self.alertThreshold <= self.quarantineThreshold",
      message:
        "alertThreshold must be less than or equal to quarantineThreshold: every quarantined bid should also raise an alert",
      fieldPath: ".alertThreshold",
    }),
  },
);
export type FraudSpec = Static<typeof FraudSpec>;

export const StorageSpec = Type.Object(
  {
    postgres: Type.Object(
      {
        secretRef: Type.Object(
          {
            name: SecretRef.properties.name,
            key: Type.String({
              description:
                "Key in the Secret holding the libpq URL (`postgres://user:password@host:5432/db`).",
              minLength: 1,
              maxLength: 253,
              default: "url",
            }),
          },
          { description: "Secret with the connection URL, given to processors as `DATABASE_URL`." },
        ),
      },
      { description: "PostgreSQL holding the silver and gold schemas." },
    ),
    s3: Type.Object(
      {
        bucket: Type.String({
          description: "Bucket for the bronze archive and the gold Parquet files.",
          minLength: 3,
          maxLength: 63,
          pattern: "^[a-z0-9][a-z0-9.-]*[a-z0-9]$",
        }),
        prefix: Type.Optional(
          Type.String({
            description:
              "Key prefix inside the bucket (default `<pipeline-name>/`); objects go under `<prefix>bronze/` and `<prefix>gold/`.",
            maxLength: 512,
            pattern: "^([^/].*/)?$",
          }),
        ),
        endpoint: Type.Optional(
          Type.String({
            description: "S3 endpoint URL for non-AWS servers, e.g. `http://minio.storage:9000`.",
            maxLength: 512,
            pattern: "^https?://",
          }),
        ),
        region: Type.String({ description: "S3 region.", minLength: 1, maxLength: 64, default: "us-east-1" }),
        credentialsSecretRef: Type.Optional(
          Type.Object(
            {
              name: SecretRef.properties.name,
              accessKeyIdKey: Type.String({
                description: "Key holding the access key id.",
                minLength: 1,
                maxLength: 253,
                default: "AWS_ACCESS_KEY_ID",
              }),
              secretAccessKeyKey: Type.String({
                description: "Key holding the secret access key.",
                minLength: 1,
                maxLength: 253,
                default: "AWS_SECRET_ACCESS_KEY",
              }),
            },
            {
              description:
                "Secret with S3 credentials, given to processors as `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`. Omit to use the pod's workload identity.",
            },
          ),
        ),
      },
      { description: "S3-compatible object storage for the bronze and gold layers." },
    ),
  },
  {
    description:
      "Where the silver, gold and bronze layers live. Credentials are only referenced, never copied.",
  },
);
export type StorageSpec = Static<typeof StorageSpec>;

/** Sanity check of a 5-field cron expression or a macro; `pipeline.ts` parses it fully. */
export const CRON_REGEX =
  "^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|[0-9*/,?LW#A-Za-z-]+( [0-9*/,?LW#A-Za-z-]+){4})$";
/** Shape of an IANA time zone name (the API server's CronJob validation checks it exists). */
export const TIME_ZONE_REGEX = "^(UTC|[A-Za-z]+(/[A-Za-z0-9_+-]+){1,2})$";

export const RollupSpec = Type.Object(
  {
    schedule: Type.String({
      description:
        "When the gold rollup runs, as a 5-field cron expression (`minute hour day-of-month month day-of-week`) or a macro like `@daily`, in `timeZone`.",
      minLength: 1,
      maxLength: 128,
      default: "15 0 * * *",
      ...cel({
        rule: `self.matches('${CRON_REGEX.replaceAll("\\", "\\\\")}')`,
        message:
          "schedule must be a 5-field cron expression like '15 0 * * *' or a macro like '@daily'; set the zone in timeZone, not in the schedule",
      }),
    }),
    timeZone: Type.String({
      description:
        "IANA time zone of the schedule, e.g. `UTC` or `Europe/Berlin`. Gold days are calendar days in this time zone (midnight to midnight local time).",
      minLength: 1,
      maxLength: 64,
      default: "UTC",
      ...cel({
        rule: `self.matches('${TIME_ZONE_REGEX.replaceAll("\\", "\\\\")}')`,
        message: "timeZone must be an IANA time zone name like 'UTC' or 'Europe/Berlin'",
      }),
    }),
    concurrencyPolicy: StringEnum(["Forbid", "Replace", "Allow"] as const, {
      description:
        "What to do when a run is due while the previous one still runs. `Forbid` (default) skips the new run: rollups replace a day atomically and must not race.",
      default: "Forbid",
    }),
    startingDeadlineSeconds: Type.Integer({
      description: "A run that could not start within this many seconds of its schedule is skipped.",
      minimum: 10,
      maximum: 86_400,
      default: 600,
    }),
    successfulJobsHistoryLimit: Type.Integer({
      description: "Finished successful Jobs to keep.",
      minimum: 0,
      maximum: 100,
      default: 3,
    }),
    failedJobsHistoryLimit: Type.Integer({
      description: "Failed Jobs to keep for inspection.",
      minimum: 0,
      maximum: 100,
      default: 3,
    }),
    backfillDays: Type.Integer({
      description:
        "Each run rebuilds this many past days (in timeZone) besides yesterday, picking up late data (0 = yesterday only).",
      minimum: 0,
      maximum: 90,
      default: 2,
    }),
    activeDeadlineSeconds: Type.Integer({
      description: "A run that takes longer than this is stopped and counted as failed.",
      minimum: 60,
      maximum: 86_400,
      default: 3600,
    }),
    resources: Resources,
  },
  { default: {}, description: "The scheduled gold rollup (a CronJob running `gavel rollup`)." },
);
export type RollupSpec = Static<typeof RollupSpec>;

// ---------------------------------------------------------------------------
// Ingest authentication
// ---------------------------------------------------------------------------

export const IngestAuthSpec = Type.Object(
  {
    apiKeysSecretRef: Type.Optional(
      Type.Object(
        {
          name: SecretRef.properties.name,
          key: Type.String({
            description:
              "Key in the Secret holding the API keys: comma- or newline-separated, each `KEY` (all scopes) or `KEY=bids+auctions+users`; at least 8 characters each.",
            minLength: 1,
            maxLength: 253,
            default: "keys",
          }),
        },
        {
          description:
            "Secret with the ingest API keys (default: Secret `<pipeline-name>-ingest-keys`, key `keys`). Given to the ingest pods as `GAVEL_API_KEYS`; clients send one as `Authorization: Bearer <key>`.",
        },
      ),
    ),
  },
  {
    default: {},
    description:
      "Authentication of the ingest API. Ingest refuses to start without at least one key, so create the Secret before the pipeline.",
  },
);
export type IngestAuthSpec = Static<typeof IngestAuthSpec>;

// ---------------------------------------------------------------------------
// Observability
// ---------------------------------------------------------------------------

export const ObservabilitySpec = Type.Object(
  {
    otlpEndpoint: Type.Optional(
      Type.String({
        description:
          "Base URL of an OTLP/HTTP receiver, e.g. `http://otel-collector.observability:4318`, given to every processor and the rollup as `OTEL_EXPORTER_OTLP_ENDPOINT`: traces and metrics are exported there. Unset: nothing is exported over OTLP (metrics are still served on `/metrics` for Prometheus, trace ids still reach logs and Kafka headers).",
        minLength: 1,
        maxLength: 512,
        pattern: "^https?://",
      }),
    ),
    tracesSampleRatio: Type.Optional(
      Type.Number({
        description:
          "Fraction (0..1) of new traces recorded, as `OTEL_TRACES_SAMPLER=parentbased_traceidratio` with `OTEL_TRACES_SAMPLER_ARG`; downstream processors follow the decision carried in the record headers. Unset: every trace (`parentbased_always_on`). Use e.g. 0.01 at 10k+ bids/s.",
        minimum: 0,
        maximum: 1,
      }),
    ),
    resourceAttributes: Type.Optional(
      Type.Record(Type.String({ maxLength: 128 }), Type.String({ maxLength: 255, pattern: "^[^,=]*$" }), {
        description:
          "Extra OpenTelemetry resource attributes, e.g. `deployment.environment: prod`, appended to `OTEL_RESOURCE_ATTRIBUTES` after the ones the operator sets (`gavel.pipeline`, `k8s.namespace.name`, `k8s.deployment.name`, `k8s.pod.name`).",
        maxProperties: 16,
        ...cel({
          rule: "self.all(k, k.matches('^[A-Za-z0-9._/-]+$'))",
          message:
            "resourceAttributes keys may hold only letters, digits and '.', '_', '/', '-' (they are joined into OTEL_RESOURCE_ATTRIBUTES as key=value,...)",
        }),
      }),
    ),
  },
  {
    default: {},
    description:
      "Telemetry of the processors and the rollup: `OTEL_*` settings of their pods. Every processor pod also carries `prometheus.io/scrape`, `prometheus.io/port` and `prometheus.io/path` annotations for its `/metrics` endpoint, and `OTEL_SERVICE_NAME=gavel-<processor>`.",
  },
);
export type ObservabilitySpec = Static<typeof ObservabilitySpec>;

// ---------------------------------------------------------------------------
// Spec
// ---------------------------------------------------------------------------

export const AuctionPipelineSpec = Type.Object(
  {
    image: Type.String({
      description: "Container image with the `gavel` CLI, used by every processor and the rollup.",
      minLength: 1,
      maxLength: 512,
      default: DEFAULT_IMAGE,
    }),
    imagePullPolicy: StringEnum(["Always", "IfNotPresent", "Never"] as const, {
      description: "Image pull policy of every pod.",
      default: "IfNotPresent",
    }),
    suspend: Type.Boolean({
      description:
        "Pause the pipeline: processors are scaled to zero and the rollup CronJob is suspended; nothing is deleted and topics keep their data. Set back to false to resume.",
      default: false,
    }),
    kafka: KafkaSpec,
    topics: TopicsSpec,
    processors: Type.Optional(ProcessorsSpec),
    ingestAuth: IngestAuthSpec,
    fraud: FraudSpec,
    storage: StorageSpec,
    rollup: RollupSpec,
    observability: ObservabilitySpec,
  },
  {
    description: "Desired state of the pipeline.",
    ...cel({
      rule: "!has(self.processors) || !has(self.processors.bidProcessor) || self.processors.bidProcessor.maxReplicas <= (has(self.topics.overrides.bids) && has(self.topics.overrides.bids.partitions) ? self.topics.overrides.bids.partitions : self.topics.partitions)",
      message:
        "processors.bidProcessor.maxReplicas must not exceed the partitions of the bids topic (extra consumers would sit idle): lower maxReplicas or raise the partitions",
      fieldPath: ".processors.bidProcessor.maxReplicas",
    }),
  },
);
export type AuctionPipelineSpec = Static<typeof AuctionPipelineSpec>;

// ---------------------------------------------------------------------------
// Status
// ---------------------------------------------------------------------------

export const Condition = Type.Object({
  type: Type.String({
    description: "Ready, TopicsReady, ProcessorsReady or RollupScheduled.",
    maxLength: 64,
  }),
  status: StringEnum(["True", "False", "Unknown"] as const, { description: "True, False or Unknown." }),
  reason: Type.String({ description: "One CamelCase word saying why.", maxLength: 128 }),
  message: Type.String({ description: "What happened and what to do, for people.", maxLength: 4096 }),
  lastTransitionTime: Type.String({ description: "When the status last changed (RFC 3339).", maxLength: 64 }),
  observedGeneration: Type.Optional(
    Type.Integer({ description: "The generation this condition was computed for.", minimum: 0 }),
  ),
});
export type Condition = Static<typeof Condition>;

export const PHASES = ["Pending", "Progressing", "Ready", "Degraded", "Suspended", "Failed"] as const;
export type Phase = (typeof PHASES)[number];

export const ProcessorStatus = Type.Object({
  name: Type.String({ description: "Processor name, e.g. bid-processor.", maxLength: 64 }),
  desiredReplicas: Type.Integer({ description: "Replicas the Deployment asks for.", minimum: 0 }),
  readyReplicas: Type.Integer({ description: "Pods ready.", minimum: 0 }),
  availableReplicas: Type.Integer({ description: "Pods available.", minimum: 0 }),
  minReplicas: Type.Integer({ description: "Effective autoscaler minimum.", minimum: 0 }),
  maxReplicas: Type.Integer({ description: "Effective autoscaler maximum (after clamping).", minimum: 0 }),
});
export type ProcessorStatus = Static<typeof ProcessorStatus>;

export const TopicStatus = Type.Object({
  name: Type.String({ description: "Kafka topic name.", maxLength: 249 }),
  kafkaTopic: Type.Optional(
    Type.String({
      description: "Name of the KafkaTopic object (provisioner strimzi; absent with gavel).",
      maxLength: 253,
    }),
  ),
  partitions: Type.Optional(
    Type.Integer({
      description: "Partitions the topic has in Kafka, as last seen by the operator (provisioner gavel).",
      minimum: 0,
    }),
  ),
  ready: StringEnum(["True", "False", "Unknown"] as const, {
    description:
      "Whether the topic exists as specified: the KafkaTopic's Ready condition (strimzi), or the operator's own check in Kafka (gavel).",
  }),
  reason: Type.Optional(
    Type.String({ description: "Why it is not ready, e.g. NotSupported.", maxLength: 128 }),
  ),
  message: Type.Optional(Type.String({ description: "What happened and how to fix it.", maxLength: 4096 })),
});
export type TopicStatus = Static<typeof TopicStatus>;

export const RollupStatus = Type.Object({
  time: Type.String({ description: "When the last rollup finished (RFC 3339).", maxLength: 64 }),
  result: StringEnum(["Succeeded", "Failed"] as const, { description: "Succeeded or Failed." }),
  days: Type.Optional(
    Type.Array(Type.String({ maxLength: 10 }), {
      description: "Days rebuilt (calendar days in spec.rollup.timeZone).",
      maxItems: 100,
    }),
  ),
  message: Type.Optional(Type.String({ description: "Error or summary.", maxLength: 4096 })),
});
export type RollupStatus = Static<typeof RollupStatus>;

/**
 * The annotation a rollup run writes on its own AuctionPipeline (JSON, a
 * RollupStatus plus fields for people reading it); the operator copies it
 * into `status.lastRollup`.
 */
export const LAST_ROLLUP_ANNOTATION = "gavel.dev/last-rollup";

export const FraudModelStatus = Type.Object({
  version: Type.String({
    description: "Version of the newest fraud model (`<trainedAt>-<hash>`).",
    maxLength: 64,
  }),
  object: Type.String({
    description: "Where it is: `s3://<bucket>/<prefix>models/fraud/<version>.json`.",
    maxLength: 1024,
  }),
  trainedAt: Type.String({ description: "When it was trained (RFC 3339).", maxLength: 64 }),
  activeFrom: Type.String({
    description: "Record time from which bids are scored with it (RFC 3339).",
    maxLength: 64,
  }),
  rows: Type.Integer({ description: "Scored bids it was trained on.", minimum: 0 }),
});
export type FraudModelStatus = Static<typeof FraudModelStatus>;

/**
 * The annotation `gavel fraud train` writes on its AuctionPipeline (JSON, a
 * FraudModelStatus); the operator copies it into `status.fraudModel`.
 */
export const FRAUD_MODEL_ANNOTATION = "gavel.dev/fraud-model";

export const AuctionPipelineStatus = Type.Object(
  {
    observedGeneration: Type.Optional(
      Type.Integer({ description: "The spec generation the status describes.", minimum: 0 }),
    ),
    phase: Type.Optional(
      StringEnum(PHASES, {
        description:
          "Summary: Pending (nothing applied yet), Progressing (children converging), Ready, Degraded (something failed after being ready), Suspended, Failed (spec cannot be applied).",
      }),
    ),
    conditions: Type.Optional(
      Type.Array(Condition, {
        description: "Ready, TopicsReady, ProcessorsReady, RollupScheduled.",
        maxItems: 16,
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
      }),
    ),
    topicsReady: Type.Optional(
      Type.String({ description: "Ready topics / all topics, e.g. `8/8`.", maxLength: 16 }),
    ),
    processorsReady: Type.Optional(
      Type.String({ description: "Available processors / all processors, e.g. `4/4`.", maxLength: 16 }),
    ),
    topics: Type.Optional(Type.Array(TopicStatus, { description: "Per-topic state.", maxItems: 64 })),
    processors: Type.Optional(
      Type.Array(ProcessorStatus, { description: "Per-processor replicas.", maxItems: 8 }),
    ),
    lastRollup: Type.Optional(RollupStatus),
    fraudModel: Type.Optional(FraudModelStatus),
  },
  { description: "Observed state, written by the operator." },
);
export type AuctionPipelineStatus = Static<typeof AuctionPipelineStatus>;

// ---------------------------------------------------------------------------
// The resource
// ---------------------------------------------------------------------------

export const ObjectMeta = Type.Object(
  {
    name: Type.String({
      description: "Pipeline name: a DNS label of at most 40 characters (it prefixes child names).",
      minLength: 1,
      maxLength: 40,
      pattern: DNS_LABEL,
    }),
    namespace: Type.Optional(Type.String({ maxLength: 63 })),
    uid: Type.Optional(Type.String()),
    generation: Type.Optional(Type.Integer()),
    resourceVersion: Type.Optional(Type.String()),
    labels: Type.Optional(Type.Record(Type.String(), Type.String())),
    annotations: Type.Optional(Type.Record(Type.String(), Type.String())),
  },
  { additionalProperties: true },
);

/** The whole resource as written in a file or read from the API server. */
export const AuctionPipelineSchema = Type.Object({
  apiVersion: Type.Literal(API_VERSION),
  kind: Type.Literal(KIND),
  metadata: ObjectMeta,
  spec: AuctionPipelineSpec,
  status: Type.Optional(AuctionPipelineStatus),
});
export type AuctionPipeline = Static<typeof AuctionPipelineSchema>;

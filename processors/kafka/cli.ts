import { type Command, InvalidArgumentError, Option } from "commander";
import type { KafkaAclsCliOptions } from "./acls-command.ts";
import { ACL_FORMATS, KAFKA_CLIENT_ROLES, type KafkaClientRole, STRIMZI_AUTHENTICATIONS } from "./roles.ts";

function parseRoles(value: string): KafkaClientRole[] {
  const roles = value
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  const bad = roles.filter((r) => !(KAFKA_CLIENT_ROLES as readonly string[]).includes(r));
  if (roles.length === 0 || bad.length > 0)
    throw new InvalidArgumentError(
      `${bad.length > 0 ? `unknown role ${bad.join(", ")}` : "no role given"}: choose from ${KAFKA_CLIENT_ROLES.join(", ")} (comma-separated)`,
    );
  return roles as KafkaClientRole[];
}

/** `gavel kafka acls -f pipeline`: the least-privilege ACLs of a pipeline (implementation imported lazily). */
export function registerKafka(program: Command): void {
  const kafka = program.command("kafka").description("Kafka settings a pipeline needs");
  kafka
    .command("acls")
    .description(
      "Print the least-privilege Kafka ACLs of a pipeline's processes: topics, consumer groups, transactional ids",
    )
    .requiredOption("-f, --file <pipeline>", "AuctionPipeline YAML or JSON file")
    .option("--principal <principal>", "Kafka principal to grant (default: User:<pipeline name>)")
    .option(
      "--role <roles>",
      `comma-separated processes: ${KAFKA_CLIENT_ROLES.join(", ")} (default: the processors that run, plus operator with topics.provisioner gavel)`,
      parseRoles,
    )
    .addOption(new Option("--format <format>", "output format").choices(ACL_FORMATS).default("table"))
    .option(
      "--bootstrap-server <hosts>",
      "kafka-acls format: --bootstrap-server (default: spec.kafka.bootstrapServers)",
    )
    .option("--command-config <file>", "kafka-acls format: admin client properties for a secured listener")
    .addOption(
      new Option("--authentication <type>", "strimzi format: the KafkaUser's authentication")
        .choices(STRIMZI_AUTHENTICATIONS)
        .default("scram-sha-512"),
    )
    .option("--namespace <namespace>", "strimzi format: the KafkaUser's namespace (default: the pipeline's)")
    .option(
      "--legacy-idempotent-write",
      "also grant IDEMPOTENT_WRITE on the cluster to idempotent producers (brokers before Kafka 2.8 only)",
    )
    .action(async (opts: KafkaAclsCliOptions) => {
      await (await import("./acls-command.ts")).kafkaAcls(opts);
    });
}

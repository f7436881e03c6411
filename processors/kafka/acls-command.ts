import { stringify } from "yaml";
import { loadPipelineFile } from "../../api/v1alpha1/pipeline.ts";
import {
  defaultAclRoles,
  pipelineAcls,
  strimziPrincipal,
  toAclTable,
  toKafkaAclsCommands,
  toStrimziKafkaUser,
} from "./acls.ts";
import type { AclFormat, KafkaClientRole, StrimziAuthentication } from "./roles.ts";

export interface KafkaAclsCliOptions {
  readonly file: string;
  readonly principal?: string;
  readonly role?: readonly KafkaClientRole[];
  readonly format: AclFormat;
  readonly bootstrapServer?: string;
  readonly commandConfig?: string;
  readonly authentication: StrimziAuthentication;
  readonly namespace?: string;
  readonly legacyIdempotentWrite?: boolean;
}

/** The KafkaUser name of a principal: `User:<name>` (SCRAM) or `User:CN=<name>` (TLS). */
function kafkaUserName(principal: string, authentication: StrimziAuthentication): string {
  const name = principal.replace(/^User:/, "").replace(authentication === "tls" ? /^CN=/ : /^$/, "");
  if (strimziPrincipal(name, authentication) !== principal)
    throw new Error(
      `a Strimzi KafkaUser's principal is its name: with --authentication ${authentication} use --principal ${strimziPrincipal("NAME", authentication)}, got '${principal}'`,
    );
  return name;
}

/** `gavel kafka acls -f pipeline`: writes the pipeline's ACLs in the chosen format to `out`. */
export async function kafkaAcls(
  opts: KafkaAclsCliOptions,
  out: (text: string) => void = (t) => process.stdout.write(t),
  warn: (text: string) => void = (t) => process.stderr.write(t),
): Promise<void> {
  const pipeline = await loadPipelineFile(opts.file);
  const name = pipeline.metadata.name;
  const roles = opts.role ?? defaultAclRoles(pipeline);
  const userName =
    opts.format === "strimzi"
      ? kafkaUserName(opts.principal ?? strimziPrincipal(name, opts.authentication), opts.authentication)
      : undefined;
  const principal =
    userName !== undefined
      ? strimziPrincipal(userName, opts.authentication)
      : (opts.principal ?? `User:${name}`);
  const rules = pipelineAcls(pipeline, {
    principal,
    roles,
    ...(opts.legacyIdempotentWrite ? { clusterIdempotentWrite: true } : {}),
  });
  const about = `Kafka ACLs of pipeline ${name} for ${principal} (${roles.join(", ")}): ${rules.length} rules, all allow, any host`;
  switch (opts.format) {
    case "json":
      out(`${JSON.stringify({ pipeline: name, principal, roles, rules }, null, 2)}\n`);
      return;
    case "table":
      out(`# ${about}\n${toAclTable(rules).join("\n")}\n`);
      return;
    case "kafka-acls": {
      const bootstrap = opts.bootstrapServer ?? pipeline.spec.kafka.bootstrapServers;
      const lines = toKafkaAclsCommands(rules, bootstrap, {
        ...(opts.commandConfig ? { commandConfig: opts.commandConfig } : {}),
      });
      out(`# ${about}\n${lines.join("\n")}\n`);
      return;
    }
    case "strimzi": {
      const cluster = pipeline.spec.kafka.clusterName;
      if (cluster === undefined)
        warn(
          "warning: the pipeline has no spec.kafka.clusterName: add the label strimzi.io/cluster=<Kafka name> to the KafkaUser, or the User Operator ignores it\n",
        );
      const namespace = opts.namespace ?? pipeline.metadata.namespace;
      const user = toStrimziKafkaUser(rules, {
        name: userName ?? name,
        authentication: opts.authentication,
        pipeline: name,
        ...(namespace ? { namespace } : {}),
        ...(cluster ? { cluster } : {}),
      });
      out(
        `# ${about}\n# Why each ACL: gavel kafka acls -f ${opts.file}${opts.role ? ` --role ${roles.join(",")}` : ""}\n${stringify(user)}`,
      );
      return;
    }
  }
}

/**
 * One check of a secured Kafka cluster before a client starts, and the one
 * line that explains a refusal. Both clients retry broken connections for
 * about a minute (kafkajs) or forever (librdkafka), logging something
 * generic each time; a wrong password or an untrusted certificate is not
 * going to fix itself, so it must fail at once, naming the setting to fix.
 */
// Before kafkajs loads: two allocation fixes to its producer (lib/kafkajs-patches.ts).
import "../../lib/kafkajs-patches.ts";
import { isIP } from "node:net";
import { type ConnectionOptions, type PeerCertificate, connect as tlsConnect } from "node:tls";
import { Kafka, logLevel } from "kafkajs";
import { ENV, type EnvName, envValue } from "../../api/env.ts";
import type { KafkaSecurity } from "../../lib/config.ts";
import { GavelError } from "../../lib/errors.ts";
import { kafkajsSecurityConfig } from "./kafkajs.ts";

/** A refusal by the cluster (or of its certificate): not retried, one line naming what to fix. */
export class KafkaAccessError extends GavelError {
  /** The environment variable (or the broker's certificate) to fix. */
  readonly setting: EnvName | "broker certificate";
  constructor(message: string, setting: KafkaAccessError["setting"]) {
    super(message);
    this.setting = setting;
  }
}

/** The settings a refusal names. */
const CA = ENV.kafkaTlsCa.name;
const BOOTSTRAP = ENV.kafkaBootstrapServers.name;

const UNTRUSTED = new Set([
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_SIGNATURE_FAILURE",
]);

function splitBroker(b: string): { host: string; port: number } {
  const i = b.lastIndexOf(":");
  const host = b.slice(0, i).replace(/^\[|\]$/g, "");
  return { host, port: Number(b.slice(i + 1)) };
}

type Probe =
  | { kind: "ok" }
  | { kind: "unreachable"; message: string }
  | { kind: "error"; code: string; message: string; cert?: PeerCertificate };

function probeTls(host: string, port: number, ca: string | undefined, verify: boolean): Promise<Probe> {
  return new Promise((resolve) => {
    const opts: ConnectionOptions = {
      host,
      port,
      rejectUnauthorized: verify,
      timeout: 5_000,
      ...(ca ? { ca: [ca] } : {}),
      ...(isIP(host) ? {} : { servername: host }),
    };
    const s = tlsConnect(opts);
    // Connected over TCP, then dropped before the handshake ended: a listener
    // that does not speak TLS (Kafka closes on a ClientHello), not one that is down.
    let connected = false;
    s.once("connect", () => {
      connected = true;
    });
    let settled = false;
    const done = (p: Probe): void => {
      if (settled) return;
      settled = true;
      s.destroy();
      resolve(p);
    };
    s.once("secureConnect", () => {
      if (verify) done({ kind: "ok" });
      else done({ kind: "error", code: "PEER", message: "", cert: s.getPeerCertificate() });
    });
    s.once("timeout", () => done({ kind: "unreachable", message: "timed out" }));
    s.once("error", (err: NodeJS.ErrnoException) => {
      const code = err.code ?? "";
      if (
        !connected &&
        ["ECONNREFUSED", "ECONNRESET", "EHOSTUNREACH", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT"].includes(code)
      )
        done({ kind: "unreachable", message: err.message });
      else done({ kind: "error", code, message: err.message });
    });
  });
}

function describeCert(c: PeerCertificate | undefined): string {
  if (!c?.subject) return "";
  const names = c.subjectaltname ? `, names ${c.subjectaltname}` : "";
  return ` (certificate CN=${c.subject.CN ?? "?"}${names}, valid ${c.valid_from} to ${c.valid_to})`;
}

/** Why a TLS handshake with a broker failed, as one line naming the fix. */
async function tlsRefusal(
  broker: string,
  ca: string | undefined,
  p: Probe & { kind: "error" },
): Promise<KafkaAccessError> {
  const { host, port } = splitBroker(broker);
  const seen = await probeTls(host, port, ca, false);
  const cert = seen.kind === "error" ? describeCert(seen.cert) : "";
  if (UNTRUSTED.has(p.code))
    return new KafkaAccessError(
      `Kafka at ${broker}: its TLS certificate is not signed by a trusted CA (${p.code})${cert}: set ${CA} to the cluster CA (PEM text or a PEM file path)`,
      CA,
    );
  if (p.code === "CERT_HAS_EXPIRED")
    return new KafkaAccessError(
      `Kafka at ${broker}: its TLS certificate has expired${cert}: renew the broker's certificate (the client trusts ${CA}; nothing to change there)`,
      "broker certificate",
    );
  if (p.code === "CERT_NOT_YET_VALID")
    return new KafkaAccessError(
      `Kafka at ${broker}: its TLS certificate is not valid yet${cert}: check the broker's and this machine's clocks`,
      "broker certificate",
    );
  if (p.code === "ERR_TLS_CERT_ALTNAME_INVALID")
    return new KafkaAccessError(
      `Kafka at ${broker}: its TLS certificate does not name '${host}'${cert}: use a bootstrap address the certificate names in ${BOOTSTRAP}, or reissue the certificate with it`,
      BOOTSTRAP,
    );
  if (/wrong version number|packet length too long|unexpected eof|socket disconnected/i.test(p.message))
    return new KafkaAccessError(
      `Kafka at ${broker} does not answer TLS (${p.message}): ${ENV.kafkaTls.name} is on, so ${BOOTSTRAP} must name the cluster's TLS listener (or set ${ENV.kafkaTls.name}=false for a plaintext one)`,
      BOOTSTRAP,
    );
  return new KafkaAccessError(
    `Kafka at ${broker}: TLS handshake failed (${p.code || "error"}: ${p.message})${cert}: check ${CA} and ${BOOTSTRAP}`,
    CA,
  );
}

/**
 * Checks a secured cluster: the TLS certificate of the first bootstrap
 * broker that answers (trusted, valid, naming the host), then the SASL
 * credentials with one authentication and no retry. Throws
 * `KafkaAccessError` for a refusal; brokers that do not answer at all are
 * left to the client's own retries (a cluster that is starting), as before.
 */
export async function checkKafkaAccess(brokers: string, security: KafkaSecurity): Promise<void> {
  const list = brokers
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  let reachable: string | undefined;
  if (security.tls) {
    for (const b of list) {
      const { host, port } = splitBroker(b);
      const p = await probeTls(host, port, security.tls.ca, true);
      if (p.kind === "unreachable") continue;
      if (p.kind === "error") throw await tlsRefusal(b, security.tls.ca, p);
      reachable = b;
      break;
    }
    if (!reachable) return;
  }
  if (!security.sasl) return;
  const kafka = new Kafka({
    clientId: "gavel-preflight",
    brokers: reachable ? [reachable] : list,
    logLevel: logLevel.NOTHING,
    retry: { retries: 0 },
    connectionTimeout: 5_000,
    authenticationTimeout: 10_000,
    ...kafkajsSecurityConfig(security),
  });
  const admin = kafka.admin();
  try {
    await admin.connect();
    await admin.describeCluster();
  } catch (err) {
    const refusal = saslRefusal(err as Error, security, reachable ?? list.join(","));
    if (refusal) throw refusal;
    // Anything else (unreachable, a timeout) is the clients' to retry.
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

function saslRefusal(err: Error, security: KafkaSecurity, broker: string): KafkaAccessError | undefined {
  const sasl = security.sasl;
  if (!sasl) return undefined;
  const mech = sasl.mechanism.toUpperCase();
  for (const e of causes(err)) {
    const msg = typeof e.message === "string" ? e.message : "";
    if (/mechanism is not supported by the server|UNSUPPORTED_SASL_MECHANISM/i.test(msg))
      return new KafkaAccessError(
        `Kafka at ${broker} does not enable SASL mechanism ${mech}: set ${ENV.kafkaSaslMechanism.name} to one its listener enables`,
        ENV.kafkaSaslMechanism.name,
      );
    if (e.name === "KafkaJSSASLAuthenticationError" || /authentication failed|invalid credentials/i.test(msg))
      return new KafkaAccessError(
        `Kafka at ${broker} refused the ${mech} credentials of user '${sasl.username}' (authentication failed): check ${ENV.kafkaSaslUsername.name} and ${ENV.kafkaSaslPassword.name} (the Secret named by spec.kafka.authSecretRef)`,
        ENV.kafkaSaslPassword.name,
      );
  }
  return undefined;
}

const AUTHZ: Record<string, { what: string }> = {
  TOPIC_AUTHORIZATION_FAILED: { what: "a topic" },
  GROUP_AUTHORIZATION_FAILED: { what: "a consumer group" },
  TRANSACTIONAL_ID_AUTHORIZATION_FAILED: { what: "a transactional id" },
  CLUSTER_AUTHORIZATION_FAILED: { what: "the cluster" },
};

function* causes(err: unknown): Generator<Record<string, unknown>> {
  const seen = new Set<unknown>();
  const queue: unknown[] = [err];
  while (queue.length > 0) {
    const e = queue.shift();
    if (!e || typeof e !== "object" || seen.has(e)) continue;
    seen.add(e);
    const o = e as Record<string, unknown>;
    yield o;
    queue.push(o.cause, o.originalError);
    if (Array.isArray(o.errors)) queue.push(...o.errors);
  }
}

/**
 * One line for a Kafka authorization refusal (a missing ACL) anywhere in an
 * error's chain, for kafkajs (`type` TOPIC_AUTHORIZATION_FAILED...) and
 * librdkafka (`type` ERR_TOPIC_AUTHORIZATION_FAILED...); undefined for
 * anything else.
 */
export function explainKafkaRefusal(
  err: unknown,
  principal: string | undefined = envValue("kafkaSaslUsername"),
): string | undefined {
  for (const e of causes(err)) {
    if (e instanceof KafkaAccessError) return e.message;
    if (e.name === "KafkaJSGroupCoordinatorNotFound")
      return `Kafka named no coordinator for this client's consumer group or transactional id (kafkajs drops the broker's reason; on a cluster with ACLs this is GROUP_AUTHORIZATION_FAILED or TRANSACTIONAL_ID_AUTHORIZATION_FAILED, a missing ACL): grant ${principal ? `User:${principal}` : "this client's principal"} the pipeline's ACLs ('gavel kafka acls -f pipeline.yaml' lists them), or check the brokers' health`;
    const type = typeof e.type === "string" ? e.type.replace(/^ERR_/, "") : "";
    const hit = AUTHZ[type];
    if (!hit) continue;
    const detail = typeof e.message === "string" && e.message !== "" ? ` (${e.message})` : "";
    const who = principal ? `User:${principal}` : "this client's principal";
    return `Kafka refused access to ${hit.what}: ${type}${detail}: grant ${who} the pipeline's ACLs ('gavel kafka acls -f pipeline.yaml' lists them)`;
  }
  return undefined;
}

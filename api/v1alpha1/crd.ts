/**
 * The AuctionPipeline CustomResourceDefinition, generated from the TypeBox
 * schemas in `api/v1alpha1/types.ts`: TypeBox-only keywords are stripped and
 * the rest is mapped to a structural openAPIV3Schema. `gavel crds` writes it
 * to `crds/`; a unit test keeps the checked-in file equal to this output.
 */
import { stringify } from "yaml";
import {
  AuctionPipelineSpec,
  AuctionPipelineStatus,
  GROUP,
  KIND,
  PLURAL,
  SHORT_NAMES,
  SINGULAR,
  VERSION,
} from "./types.ts";

export const CRD_NAME = `${PLURAL}.${GROUP}`;
export const CRD_FILE = `${GROUP}_${PLURAL}.yaml`;

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Schema = { [k: string]: Json };

/** Keywords a structural CRD schema may carry (everything else is TypeBox's). */
const KEEP = new Set([
  "type",
  "description",
  "properties",
  "required",
  "items",
  "enum",
  "default",
  "minimum",
  "maximum",
  "exclusiveMinimum",
  "exclusiveMaximum",
  "minLength",
  "maxLength",
  "pattern",
  "minItems",
  "maxItems",
  "uniqueItems",
  "minProperties",
  "maxProperties",
  "format",
  "nullable",
  "additionalProperties",
  "x-kubernetes-validations",
  "x-kubernetes-list-type",
  "x-kubernetes-list-map-keys",
  "x-kubernetes-map-type",
  "x-kubernetes-preserve-unknown-fields",
  "x-kubernetes-int-or-string",
]);

/** Map one TypeBox schema node to a structural schema node. */
export function toStructural(node: unknown): Schema {
  const s = node as Record<string, unknown>;
  // A union of literals (TypeBox's string enum) becomes `enum`.
  if (Array.isArray(s.anyOf)) {
    const branches = s.anyOf as Record<string, unknown>[];
    const consts = branches.map((b) => b.const);
    if (consts.every((c) => typeof c === "string")) {
      const out: Schema = { type: "string", enum: consts as string[] };
      if (typeof s.description === "string") out.description = s.description;
      if (s.default !== undefined) out.default = s.default as Json;
      if (s["x-kubernetes-validations"] !== undefined)
        out["x-kubernetes-validations"] = structuredClone(s["x-kubernetes-validations"]) as Json;
      return out;
    }
    throw new Error("only unions of string literals can be mapped to a structural schema");
  }
  const out: Schema = {};
  for (const [k, v] of Object.entries(s)) {
    if (!KEEP.has(k) || v === undefined) continue;
    if (k === "properties") {
      const props: Schema = {};
      for (const [pk, pv] of Object.entries(v as Record<string, unknown>)) props[pk] = toStructural(pv);
      out.properties = props;
    } else if (k === "items") {
      out.items = toStructural(v);
    } else if (k === "additionalProperties") {
      // `false` is implied by pruning; `true` means "keep unknown fields".
      if (v === true) out["x-kubernetes-preserve-unknown-fields"] = true;
      else if (typeof v === "object") out.additionalProperties = toStructural(v);
    } else if (k === "required") {
      // Fields with a default are filled by the API server: users may omit them.
      const props = s.properties as Record<string, Record<string, unknown>>;
      const req = (v as string[]).filter((r) => props[r]?.default === undefined);
      if (req.length > 0) out.required = req;
    } else {
      out[k] = structuredClone(v) as Json;
    }
  }
  // Type.Record: a map of string to the value schema.
  if (s.patternProperties !== undefined) {
    const [valueSchema] = Object.values(s.patternProperties as Record<string, unknown>);
    out.type = "object";
    out.additionalProperties = toStructural(valueSchema);
  }
  return out;
}

function openAPIV3Schema(): Schema {
  return {
    type: "object",
    description:
      "An AuctionPipeline runs the Gavel auction data pipeline: Kafka topics, the ingest, bid-processor, silver-writer and bronze-archiver processors, and the scheduled gold rollup. Apply it and read `status` for progress.",
    required: ["spec"],
    properties: {
      apiVersion: {
        type: "string",
        description: "APIVersion of this object: gavel.dev/v1alpha1.",
      },
      kind: { type: "string", description: "Kind of this object: AuctionPipeline." },
      metadata: { type: "object" },
      spec: toStructural(AuctionPipelineSpec),
      status: toStructural(AuctionPipelineStatus),
    },
    "x-kubernetes-validations": [
      {
        rule: "self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$') && size(self.metadata.name) <= 40",
        message:
          "metadata.name must be a DNS label (lowercase letters, digits and '-') of at most 40 characters, because it prefixes the names of the pipeline's topics and workloads",
      },
    ],
  };
}

/** The CRD object. */
export function auctionPipelineCrd(): Schema {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: {
      name: CRD_NAME,
      labels: { "app.kubernetes.io/name": "gavel", "app.kubernetes.io/part-of": "gavel" },
    },
    spec: {
      group: GROUP,
      names: {
        kind: KIND,
        listKind: `${KIND}List`,
        plural: PLURAL,
        singular: SINGULAR,
        shortNames: [...SHORT_NAMES],
        categories: ["gavel"],
      },
      scope: "Namespaced",
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            {
              name: "Ready",
              type: "string",
              description: "Whether every child is ready",
              jsonPath: '.status.conditions[?(@.type=="Ready")].status',
            },
            { name: "Phase", type: "string", description: "Pipeline phase", jsonPath: ".status.phase" },
            {
              name: "Topics",
              type: "string",
              description: "Ready topics / topics",
              jsonPath: ".status.topicsReady",
            },
            {
              name: "Processors",
              type: "string",
              description: "Available processors / processors",
              jsonPath: ".status.processorsReady",
            },
            {
              name: "Provisioner",
              type: "string",
              description: "Who creates the topics in Kafka (strimzi or gavel)",
              jsonPath: ".spec.kafka.topics.provisioner",
              priority: 1,
            },
            {
              name: "Last rollup",
              type: "date",
              description: "When the gold rollup last finished",
              jsonPath: ".status.lastRollup.time",
            },
            {
              name: "Fraud model",
              type: "string",
              description: "Version of the newest trained fraud model",
              jsonPath: ".status.fraudModel.version",
              priority: 1,
            },
            { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
          ],
          schema: { openAPIV3Schema: openAPIV3Schema() },
        },
      ],
    },
  };
}

export const GENERATED_HEADER =
  "# Generated by `gavel crds` from api/v1alpha1/types.ts. Do not edit: change the types and regenerate.\n";

/** YAML text of a list of objects, as written to `crds/`. */
export function toYaml(objects: readonly unknown[]): string {
  return GENERATED_HEADER + objects.map((o) => stringify(o, { lineWidth: 0 })).join("---\n");
}

export function crdYaml(): string {
  return toYaml([auctionPipelineCrd()]);
}

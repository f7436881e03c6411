import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { generatedFiles } from "../../operator/generate.ts";
import { auctionPipelineCrd, CRD_FILE } from "./crd.ts";

describe("generated CRD and RBAC", () => {
  it("are checked in up to date (run `gavel crds` after changing api/v1alpha1)", async () => {
    for (const [name, text] of Object.entries(generatedFiles())) {
      expect(await readFile(`crds/${name}`, "utf8"), `crds/${name} is stale: run 'gavel crds'`).toBe(text);
    }
  });

  it("is structural: no TypeBox keywords, enums and maps mapped", () => {
    const text = JSON.stringify(auctionPipelineCrd());
    for (const k of ["anyOf", "patternProperties", "const", "$id", 'additionalProperties":false'])
      expect(text).not.toContain(k);
    // biome-ignore lint/suspicious/noExplicitAny: the test walks the generated JSON
    const spec = (auctionPipelineCrd() as any).spec.versions[0].schema.openAPIV3Schema.properties.spec;
    expect(spec.properties.rollup.properties.concurrencyPolicy).toMatchObject({
      type: "string",
      enum: ["Forbid", "Replace", "Allow"],
      default: "Forbid",
    });
    expect(spec.properties.topics.properties.config.additionalProperties).toMatchObject({ type: "string" });
    // defaulted fields are not required; kafka and storage are
    expect(spec.required).toEqual(["kafka", "storage"]);
    expect(spec.properties.topics.properties.partitions["x-kubernetes-validations"][0].rule).toBe(
      "self >= oldSelf",
    );
    // CEL rules on enums survive the enum mapping (provisioner is immutable).
    expect(spec.properties.kafka.properties.topics.properties.provisioner).toMatchObject({
      enum: ["strimzi", "gavel"],
      default: "strimzi",
      "x-kubernetes-validations": [expect.objectContaining({ rule: "self == oldSelf" })],
    });
    expect(CRD_FILE).toBe("gavel.dev_auctionpipelines.yaml");
  });
});

import { describe, expect, it } from "vitest";
import { groupOf, MANAGED_KINDS } from "./controller/kinds.ts";
import { operatorRules } from "./rbac.ts";

describe("operator RBAC", () => {
  it("grants every managed kind what apply, watch and prune need", () => {
    const rules = operatorRules();
    for (const k of MANAGED_KINDS) {
      const rule = rules.find(
        (r) => r.apiGroups.includes(groupOf(k.apiVersion)) && r.resources.includes(k.resource),
      );
      expect(rule, `${k.kind} missing from operatorRules()`).toBeDefined();
      for (const v of ["get", "list", "watch", "patch", "delete"]) expect(rule?.verbs).toContain(v);
    }
  });

  it("may only get Secrets (the gavel provisioner's Kafka auth Secret) and uses no wildcards", () => {
    for (const r of operatorRules()) {
      if (r.resources.includes("secrets")) {
        expect(r.resources).toEqual(["secrets"]);
        expect(r.verbs).toEqual(["get"]);
      }
      expect([...r.resources, ...r.verbs, ...r.apiGroups]).not.toContain("*");
    }
    expect(operatorRules().filter((r) => r.resources.includes("secrets"))).toHaveLength(1);
  });
});

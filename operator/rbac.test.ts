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

  it("never touches Secrets and uses no wildcards", () => {
    for (const r of operatorRules()) {
      expect(r.resources).not.toContain("secrets");
      expect([...r.resources, ...r.verbs, ...r.apiGroups]).not.toContain("*");
    }
  });
});

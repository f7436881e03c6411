import { Construct } from "constructs";
import { childObject, integerIn, type SelectingProps } from "./child-object.ts";

export interface DisruptionBudgetProps extends SelectingProps {
  /** Pods that may be evicted at once. Default 1: drains move consumers one at a time. */
  readonly maxUnavailable?: number;
}

/** A policy/v1 PodDisruptionBudget so node drains do not take a processor down at once. */
export class DisruptionBudget extends Construct {
  constructor(scope: Construct, id: string, props: DisruptionBudgetProps) {
    super(scope, id);
    const maxUnavailable = integerIn(
      props.maxUnavailable ?? 1,
      { min: 1 },
      () =>
        `PodDisruptionBudget ${props.name}: maxUnavailable must be at least 1, or drains would block forever`,
    );
    childObject(this, props, {
      apiVersion: "policy/v1",
      kind: "PodDisruptionBudget",
      spec: { maxUnavailable, selector: { matchLabels: { ...props.selector } } },
    });
  }
}

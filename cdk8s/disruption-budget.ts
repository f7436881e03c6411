import { ApiObject } from "cdk8s";
import { Construct } from "constructs";

export interface DisruptionBudgetProps {
  readonly name: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly selector: Readonly<Record<string, string>>;
  /** Pods that may be evicted at once. Default 1: drains move consumers one at a time. */
  readonly maxUnavailable?: number;
}

/** A policy/v1 PodDisruptionBudget so node drains do not take a processor down at once. */
export class DisruptionBudget extends Construct {
  constructor(scope: Construct, id: string, props: DisruptionBudgetProps) {
    super(scope, id);
    const maxUnavailable = props.maxUnavailable ?? 1;
    if (!Number.isInteger(maxUnavailable) || maxUnavailable < 1)
      throw new Error(
        `PodDisruptionBudget ${props.name}: maxUnavailable must be at least 1, or drains would block forever`,
      );
    new ApiObject(this, "Resource", {
      apiVersion: "policy/v1",
      kind: "PodDisruptionBudget",
      metadata: { name: props.name, labels: { ...props.labels } },
      spec: { maxUnavailable, selector: { matchLabels: { ...props.selector } } },
    });
  }
}

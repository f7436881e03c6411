/**
 * What the constructs of a pipeline's chart have in common: each renders one
 * named Kubernetes object (two for the rollup's Role and RoleBinding) whose
 * labels are the chart's (pipelineLabels, added by cdk8s) plus the
 * construct's own, so the operator can find and prune it.
 */
import { ApiObject } from "cdk8s";
import type { Construct } from "constructs";

/** The props every construct of the chart takes. */
export interface ChildProps {
  /** Object name (names.ts derives it from the pipeline name). */
  readonly name: string;
  /** Extra labels (e.g. the component). Default none. */
  readonly labels?: Readonly<Record<string, string>>;
}

/** Props of an object that selects one component's pods (Deployment, Service, PodDisruptionBudget). */
export interface SelectingProps extends ChildProps {
  /** Pod selector labels (names.ts selectorLabels); immutable once created. */
  readonly selector: Readonly<Record<string, string>>;
}

/** A manifest without its metadata: `apiVersion`, `kind` and the rest of the body. */
export interface ObjectBody {
  readonly apiVersion: string;
  readonly kind: string;
  readonly [field: string]: unknown;
}

/**
 * The object `body` named and labelled from `props`: metadata `{ name,
 * labels }` placed after `apiVersion` and `kind`, as kubectl prints it.
 */
export function childObject(
  scope: Construct,
  props: ChildProps,
  body: ObjectBody,
  id = "Resource",
): ApiObject {
  const { apiVersion, kind, ...rest } = body;
  return new ApiObject(scope, id, {
    apiVersion,
    kind,
    metadata: { name: props.name, labels: { ...props.labels } },
    ...rest,
  });
}

/**
 * `value` when it is an integer from `min` to `max` (default: no upper
 * bound), else an error with `message(value)`. The constructs check their
 * numbers when the chart is built, so a wrong one fails `gavel synth` and the
 * reconcile with a message that says what to fix, instead of being refused by
 * the API server later.
 */
export function integerIn(
  value: number,
  range: { readonly min: number; readonly max?: number },
  message: (value: number) => string,
): number {
  if (!Number.isInteger(value) || value < range.min || value > (range.max ?? Number.POSITIVE_INFINITY))
    throw new Error(message(value));
  return value;
}

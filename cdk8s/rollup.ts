import type { V1PodSpec } from "@kubernetes/client-node";
import { Construct } from "constructs";
import type { RollupSpec } from "../api/v1alpha1/types.ts";
import { type ChildProps, childObject } from "./child-object.ts";
import { CONFIG_HASH_ANNOTATION } from "./names.ts";

export interface RollupCronJobProps extends ChildProps {
  readonly rollup: RollupSpec;
  /** Pod spec running `gavel rollup`. */
  readonly podSpec: V1PodSpec;
  readonly configHash: string;
  /** Suspend scheduling (a paused pipeline). Default false. */
  readonly suspend?: boolean;
}

/**
 * The gold rollup CronJob. `concurrencyPolicy` defaults to Forbid: a rollup
 * replaces whole days and two must not race. A Job retries twice, then the
 * next schedule (which also backfills) picks the day up again.
 */
export class RollupCronJob extends Construct {
  constructor(scope: Construct, id: string, props: RollupCronJobProps) {
    super(scope, id);
    const r = props.rollup;
    if (props.name.length > 52)
      throw new Error(`CronJob name ${props.name} is longer than 52 characters: use a shorter pipeline name`);
    if (r.schedule.trim() === "")
      throw new Error("CronJob schedule is empty: set spec.rollup.schedule, e.g. '15 0 * * *'");
    childObject(this, props, {
      apiVersion: "batch/v1",
      kind: "CronJob",
      spec: {
        schedule: r.schedule,
        timeZone: r.timeZone,
        concurrencyPolicy: r.concurrencyPolicy,
        startingDeadlineSeconds: r.startingDeadlineSeconds,
        successfulJobsHistoryLimit: r.successfulJobsHistoryLimit,
        failedJobsHistoryLimit: r.failedJobsHistoryLimit,
        suspend: props.suspend ?? false,
        jobTemplate: {
          metadata: { labels: { ...props.labels } },
          spec: {
            backoffLimit: 2,
            activeDeadlineSeconds: r.activeDeadlineSeconds,
            template: {
              metadata: {
                labels: { ...props.labels },
                annotations: { [CONFIG_HASH_ANNOTATION]: props.configHash },
              },
              spec: props.podSpec,
            },
          },
        },
      },
    });
  }
}

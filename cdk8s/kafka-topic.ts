import type { ApiObject } from "cdk8s";
import { Construct } from "constructs";
import type { ResolvedTopic } from "../api/v1alpha1/pipeline.ts";
import { type ChildProps, childObject } from "./child-object.ts";
import { STRIMZI_CLUSTER_LABEL } from "./names.ts";

/** `name` is the KafkaTopic object's name (a DNS subdomain), not the topic's. */
export interface KafkaTopicProps extends ChildProps {
  /** Strimzi `Kafka` cluster name, set as the `strimzi.io/cluster` label. */
  readonly clusterName: string;
  /** The topic with every setting resolved. */
  readonly topic: ResolvedTopic;
}

/** A Strimzi `kafka.strimzi.io/v1` KafkaTopic, reconciled by the Strimzi topic operator. */
export class KafkaTopic extends Construct {
  readonly apiObject: ApiObject;

  constructor(scope: Construct, id: string, props: KafkaTopicProps) {
    super(scope, id);
    const { topic } = props;
    if (topic.partitions < 1) throw new Error(`KafkaTopic ${props.name}: partitions must be at least 1`);
    if (topic.replicas < 1) throw new Error(`KafkaTopic ${props.name}: replicas must be at least 1`);
    if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(props.name) || props.name.length > 253)
      throw new Error(
        `KafkaTopic name ${JSON.stringify(props.name)} is not a DNS subdomain: use lowercase letters, digits, '-' and '.'`,
      );
    const labels = { ...props.labels, [STRIMZI_CLUSTER_LABEL]: props.clusterName };
    this.apiObject = childObject(
      this,
      { name: props.name, labels },
      {
        apiVersion: "kafka.strimzi.io/v1",
        kind: "KafkaTopic",
        spec: {
          topicName: topic.name,
          partitions: topic.partitions,
          replicas: topic.replicas,
          config: { ...topic.config },
        },
      },
    );
  }
}

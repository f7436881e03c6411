import { ApiObject } from "cdk8s";
import { Construct } from "constructs";

export interface IngestServiceProps {
  readonly name: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly selector: Readonly<Record<string, string>>;
  /** Service port. Default 80. */
  readonly port?: number;
}

/** The ClusterIP Service in front of the ingest API (port 80 to the pods' `http` port). */
export class IngestService extends Construct {
  constructor(scope: Construct, id: string, props: IngestServiceProps) {
    super(scope, id);
    const port = props.port ?? 80;
    if (!Number.isInteger(port) || port < 1 || port > 65535)
      throw new Error(`Service ${props.name}: port must be 1..65535, got ${port}`);
    new ApiObject(this, "Resource", {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: props.name, labels: { ...props.labels } },
      spec: {
        type: "ClusterIP",
        selector: { ...props.selector },
        ports: [{ name: "http", port, targetPort: "http", protocol: "TCP" }],
      },
    });
  }
}

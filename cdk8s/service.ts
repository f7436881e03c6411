import { Construct } from "constructs";
import { childObject, integerIn, type SelectingProps } from "./child-object.ts";

export interface IngestServiceProps extends SelectingProps {
  /** Service port. Default 80. */
  readonly port?: number;
}

/** The ClusterIP Service in front of the ingest API (port 80 to the pods' `http` port). */
export class IngestService extends Construct {
  constructor(scope: Construct, id: string, props: IngestServiceProps) {
    super(scope, id);
    const port = integerIn(
      props.port ?? 80,
      { min: 1, max: 65535 },
      (p) => `Service ${props.name}: port must be 1..65535, got ${p}`,
    );
    childObject(this, props, {
      apiVersion: "v1",
      kind: "Service",
      spec: {
        type: "ClusterIP",
        selector: { ...props.selector },
        ports: [{ name: "http", port, targetPort: "http", protocol: "TCP" }],
      },
    });
  }
}

/** Jaeger all-in-one (in-memory) for the seed's tracing walkthrough: query UI :16686, OTLP :4317/:4318. */
import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { componentLabels, service } from './_util';

export interface JaegerProps {
  /** Helm-style release name; objects are named `<release>-jaeger`, `<release>-jaeger-query`, `<release>-jaeger-collector`. */
  readonly release: string;
  /** Namespace the collector Service lives in (for the collector URL). */
  readonly namespace: string;
  /**
   * All-in-one image.
   * @default "jaegertracing/all-in-one:1.57.0"
   */
  readonly image?: string;
  /**
   * Node labels the Jaeger pod must run on.
   * @default - anywhere
   */
  readonly nodeSelector?: Readonly<Record<string, string>>;
}

export const JAEGER_QUERY_PORT = 16686;
export const JAEGER_OTLP_GRPC_PORT = 4317;
export const JAEGER_OTLP_HTTP_PORT = 4318;
const JAEGER_ADMIN_PORT = 14269;

/** The OTLP/HTTP traces URL of the Jaeger a DragonflyCluster with `jaeger: true` deploys in `namespace`. */
export function jaegerCollectorUrl(namespace: string, release = 'dragonfly'): string {
  return `http://${release}-jaeger-collector.${namespace}.svc.cluster.local:${JAEGER_OTLP_HTTP_PORT}/v1/traces`;
}

export class Jaeger extends Construct {
  /** OTLP/HTTP traces endpoint every config's `jaeger` key gets. */
  public readonly collectorUrl: string;
  public readonly queryServiceName: string;

  constructor(scope: Construct, id: string, props: JaegerProps) {
    super(scope, id);
    const name = `${props.release}-jaeger`;
    const labels = componentLabels(props.release, 'jaeger');
    this.queryServiceName = `${name}-query`;
    const collector = `${name}-collector`;
    this.collectorUrl = jaegerCollectorUrl(props.namespace, props.release);

    service(this, 'QueryService', this.queryServiceName, labels, [{ name: 'http-query', port: JAEGER_QUERY_PORT }]);
    service(this, 'CollectorService', collector, labels, [
      { name: 'otlp-grpc', port: JAEGER_OTLP_GRPC_PORT },
      { name: 'otlp-http', port: JAEGER_OTLP_HTTP_PORT },
    ]);
    new k8s.KubeDeployment(this, 'Resource', {
      metadata: { name, labels },
      spec: {
        replicas: 1,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            automountServiceAccountToken: false,
            ...(props.nodeSelector && Object.keys(props.nodeSelector).length > 0 ? { nodeSelector: { ...props.nodeSelector } } : {}),
            containers: [
              {
                name: 'jaeger',
                image: props.image ?? 'jaegertracing/all-in-one:1.57.0',
                imagePullPolicy: 'IfNotPresent',
                env: [{ name: 'COLLECTOR_OTLP_ENABLED', value: 'true' }],
                ports: [
                  { name: 'http-query', containerPort: JAEGER_QUERY_PORT, protocol: 'TCP' },
                  { name: 'otlp-grpc', containerPort: JAEGER_OTLP_GRPC_PORT, protocol: 'TCP' },
                  { name: 'otlp-http', containerPort: JAEGER_OTLP_HTTP_PORT, protocol: 'TCP' },
                  { name: 'admin', containerPort: JAEGER_ADMIN_PORT, protocol: 'TCP' },
                ],
                readinessProbe: { httpGet: { path: '/', port: k8s.IntOrString.fromNumber(JAEGER_ADMIN_PORT) }, periodSeconds: 10 },
                livenessProbe: { httpGet: { path: '/', port: k8s.IntOrString.fromNumber(JAEGER_ADMIN_PORT) }, initialDelaySeconds: 15 },
                resources: {
                  requests: { cpu: k8s.Quantity.fromString('0'), memory: k8s.Quantity.fromString('0') },
                  limits: { cpu: k8s.Quantity.fromString('1'), memory: k8s.Quantity.fromString('1Gi') },
                },
              },
            ],
          },
        },
      },
    });
  }
}

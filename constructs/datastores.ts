/**
 * In-cluster MySQL and Redis for the manager (the chart's Bitnami subcharts, reduced to one
 * StatefulSet each). Services keep the chart's names, `<release>-mysql` and
 * `<release>-redis-master`, which other clusters' configs point at.
 */
import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { componentLabels, service, type SecretKeyRef } from './_util';
import { placementOf, type PlacementOptions } from './workload';

/**
 * Default password of the in-cluster MySQL user, Redis and the manager's root user when no
 * value or existing Secret is given. It is the value the seed documents publish (Helm chart
 * default); set a real one (or an existing Secret) for anything but a trial cluster.
 */
export const DOCUMENTED_DEFAULT_PASSWORD = 'dragonfly';

export interface InClusterMysqlProps extends PlacementOptions {
  /** Helm-style release name; objects are named after it (`<release>-mysql`, `<release>-redis-master`). */
  readonly release: string;
  /**
   * Password of the `dragonfly` user (and root).
   * @default "dragonfly" (documented default; see DOCUMENTED_DEFAULT_PASSWORD)
   */
  readonly password?: string;
  /**
   * Existing Secret with keys `mysql-password` and `mysql-root-password`; no Secret is created.
   * @default - a Secret `<release>-mysql` is created from `password`
   */
  readonly existingSecret?: string;
  /**
   * Image.
   * @default "mysql:8.0"
   */
  readonly image?: string;
  /**
   * Size of the data volume.
   * @default "8Gi"
   */
  readonly storageSize?: string;
  /**
   * Node labels.
   * @default - any node
   */
  readonly nodeSelector?: Readonly<Record<string, string>>;
}

export const MYSQL_PORT = 3306;
export const REDIS_PORT = 6379;

export class InClusterMysql extends Construct {
  public readonly serviceName: string;
  public readonly database = 'manager';
  public readonly user = 'dragonfly';
  public readonly passwordSecret: SecretKeyRef;

  constructor(scope: Construct, id: string, props: InClusterMysqlProps) {
    super(scope, id);
    const name = `${props.release}-mysql`;
    this.serviceName = name;
    const labels = componentLabels(props.release, 'mysql');
    const secretName = props.existingSecret ?? name;
    if (!props.existingSecret) {
      const password = props.password ?? DOCUMENTED_DEFAULT_PASSWORD;
      if (password.length < 8) throw new Error('mysql password must have at least 8 characters; set a longer mysql.password');
      new k8s.KubeSecret(this, 'Secret', {
        metadata: { name, labels },
        type: 'Opaque',
        stringData: { 'mysql-password': password, 'mysql-root-password': password },
      });
    }
    this.passwordSecret = { name: secretName, key: 'mysql-password' };
    service(this, 'Service', name, labels, [{ name: 'mysql', port: MYSQL_PORT }]);
    const fromSecret = (key: string): k8s.EnvVarSource => ({ secretKeyRef: { name: secretName, key } });
    new k8s.KubeStatefulSet(this, 'Resource', {
      metadata: { name, labels },
      spec: {
        replicas: 1,
        serviceName: name,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            automountServiceAccountToken: false,
            ...(props.nodeSelector && Object.keys(props.nodeSelector).length > 0 ? { nodeSelector: { ...props.nodeSelector } } : {}),
            ...placementOf(props),
            containers: [
              {
                name: 'mysql',
                image: props.image ?? 'mysql:8.0',
                imagePullPolicy: 'IfNotPresent',
                env: [
                  { name: 'MYSQL_ROOT_PASSWORD', valueFrom: fromSecret('mysql-root-password') },
                  { name: 'MYSQL_DATABASE', value: this.database },
                  { name: 'MYSQL_USER', value: this.user },
                  { name: 'MYSQL_PASSWORD', valueFrom: fromSecret('mysql-password') },
                ],
                ports: [{ name: 'mysql', containerPort: MYSQL_PORT, protocol: 'TCP' }],
                readinessProbe: {
                  exec: { command: ['sh', '-c', 'mysqladmin ping -h 127.0.0.1 -uroot -p"$MYSQL_ROOT_PASSWORD"'] },
                  initialDelaySeconds: 10,
                  periodSeconds: 10,
                  timeoutSeconds: 5,
                },
                livenessProbe: { tcpSocket: { port: k8s.IntOrString.fromNumber(MYSQL_PORT) }, initialDelaySeconds: 60, periodSeconds: 20 },
                volumeMounts: [{ name: 'data', mountPath: '/var/lib/mysql' }],
              },
            ],
          },
        },
        volumeClaimTemplates: [
          {
            metadata: { name: 'data' },
            spec: {
              accessModes: ['ReadWriteOnce'],
              resources: { requests: { storage: k8s.Quantity.fromString(props.storageSize ?? '8Gi') } },
            },
          },
        ],
      },
    });
  }
}

export interface InClusterRedisProps extends PlacementOptions {
  /** Helm-style release name; objects are named after it (`<release>-mysql`, `<release>-redis-master`). */
  readonly release: string;
  /**
   * Redis password (`requirepass`).
   * @default "dragonfly" (documented default; see DOCUMENTED_DEFAULT_PASSWORD)
   */
  readonly password?: string;
  /**
   * Existing Secret with key `redis-password`; no Secret is created.
   * @default - a Secret `<release>-redis` is created from `password`
   */
  readonly existingSecret?: string;
  /**
   * Image.
   * @default "redis:7.2-alpine"
   */
  readonly image?: string;
  /**
   * Node labels.
   * @default - any node
   */
  readonly nodeSelector?: Readonly<Record<string, string>>;
}

export class InClusterRedis extends Construct {
  /** `<release>-redis-master`, the name the seed's cluster B uses. */
  public readonly serviceName: string;
  public readonly passwordSecret: SecretKeyRef;

  constructor(scope: Construct, id: string, props: InClusterRedisProps) {
    super(scope, id);
    const name = `${props.release}-redis-master`;
    this.serviceName = name;
    const labels = componentLabels(props.release, 'redis');
    const secretName = props.existingSecret ?? `${props.release}-redis`;
    if (!props.existingSecret) {
      new k8s.KubeSecret(this, 'Secret', {
        metadata: { name: secretName, labels },
        type: 'Opaque',
        stringData: { 'redis-password': props.password ?? DOCUMENTED_DEFAULT_PASSWORD },
      });
    }
    this.passwordSecret = { name: secretName, key: 'redis-password' };
    service(this, 'Service', name, labels, [{ name: 'redis', port: REDIS_PORT }]);
    new k8s.KubeStatefulSet(this, 'Resource', {
      metadata: { name, labels },
      spec: {
        replicas: 1,
        serviceName: name,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            automountServiceAccountToken: false,
            ...(props.nodeSelector && Object.keys(props.nodeSelector).length > 0 ? { nodeSelector: { ...props.nodeSelector } } : {}),
            ...placementOf(props),
            containers: [
              {
                name: 'redis',
                image: props.image ?? 'redis:7.2-alpine',
                imagePullPolicy: 'IfNotPresent',
                command: ['sh', '-c', 'exec redis-server --requirepass "$REDIS_PASSWORD" --appendonly no'],
                env: [{ name: 'REDIS_PASSWORD', valueFrom: { secretKeyRef: { name: secretName, key: 'redis-password' } } }],
                ports: [{ name: 'redis', containerPort: REDIS_PORT, protocol: 'TCP' }],
                readinessProbe: {
                  exec: { command: ['sh', '-c', 'redis-cli -a "$REDIS_PASSWORD" --no-auth-warning ping | grep -q PONG'] },
                  initialDelaySeconds: 5,
                  periodSeconds: 10,
                },
                livenessProbe: { tcpSocket: { port: k8s.IntOrString.fromNumber(REDIS_PORT) }, initialDelaySeconds: 15, periodSeconds: 20 },
                volumeMounts: [{ name: 'data', mountPath: '/data' }],
              },
            ],
            volumes: [{ name: 'data', emptyDir: {} }],
          },
        },
      },
    });
  }
}

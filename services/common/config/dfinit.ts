/** dfinit.yaml: which registries containerd should pull through the local dfdaemon proxy. */
import { z } from 'zod';
import { commonKeys } from './primitives';

export const dfinitRegistrySchema = z.strictObject({
  /** Directory name under config_path, e.g. "ghcr.io" or "docker.io". */
  hostNamespace: z.string().regex(/^[A-Za-z0-9._-]+(:\d+)?$/, 'expected a registry host such as "ghcr.io" or "registry.local:5000"'),
  /** The origin, e.g. "https://ghcr.io" (docker.io: "https://index.docker.io"). */
  serverAddr: z.string().url('expected a URL such as https://ghcr.io'),
  capabilities: z.array(z.enum(['pull', 'resolve', 'push'])).min(1).default(['pull', 'resolve']),
  skipVerify: z.boolean().default(false),
});

export const dfinitConfigSchema = z.strictObject({
  proxy: z
    .strictObject({ addr: z.string().url('expected a URL such as http://127.0.0.1:65001').default('http://127.0.0.1:65001') })
    .prefault({}),
  containerRuntime: z
    .strictObject({
      containerd: z
        .strictObject({
          configPath: z.string().default('/etc/containerd/config.toml'),
          registries: z.array(dfinitRegistrySchema).default([]),
          /** Overwrite hosts.toml files that someone else wrote. */
          replaceExisting: z.boolean().default(false),
          /** Run the restart command when config_path had to be added to config.toml. */
          restart: z.boolean().default(false),
          restartCommand: z.array(z.string()).default(['nsenter', '-t', '1', '-m', '--', 'systemctl', 'restart', 'containerd.service']),
        })
        .prefault({}),
    })
    .prefault({}),
  ...commonKeys,
});

export type DfinitConfigInput = z.input<typeof dfinitConfigSchema>;
export type DfinitConfig = z.output<typeof dfinitConfigSchema>;

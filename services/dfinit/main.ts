#!/usr/bin/env node
/** dfinit: points containerd at the local dfdaemon proxy (hosts.toml per registry), then exits. */
import { Command } from 'commander';
import { ConfigError, loadConfig } from '../common/config';
import { DfinitError } from './containerd';
import { runDfinit } from './run';

export async function main(argv: readonly string[] = process.argv): Promise<number> {
  const program = new Command('dfinit')
    .description('write containerd hosts.toml files that pull through the local dfdaemon proxy')
    .option('-c, --config <file>', 'dfinit config file', '/etc/dragonfly/dfinit.yaml')
    .option('--dry-run', 'print the changes as a diff and write nothing', false)
    .option('--uninstall', 'remove exactly what earlier runs wrote', false)
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  try {
    program.parse([...argv]);
  } catch (err) {
    const code = (err as { exitCode?: number }).exitCode;
    return typeof code === 'number' ? code : 1;
  }
  const opts = program.opts<{ config: string; dryRun: boolean; uninstall: boolean }>();
  try {
    const config = loadConfig('dfinit', opts.config);
    await runDfinit(config, { dryRun: opts.dryRun, uninstall: opts.uninstall, print: (s) => process.stdout.write(s.endsWith('\n') ? s : `${s}\n`) });
    return 0;
  } catch (err) {
    if (err instanceof ConfigError || err instanceof DfinitError) {
      process.stderr.write(`dfinit: ${err.message}\n`);
      return 1;
    }
    const e = err as NodeJS.ErrnoException;
    process.stderr.write(`dfinit: ${e.code ? `${e.code}: ` : ''}${e.message ?? String(err)}\n`);
    return 1;
  }
}

if (require.main === module) {
  void main().then((code) => process.exit(code));
}

import type { Command } from 'commander';
import { loadConfigs } from '../../config/conf-dir.js';
import { Daemon } from '../../daemon/daemon.js';
import { createLogger } from '../../log.js';
import { daemonRouters } from '../../daemon/routers.js';
import { CliExit, EXIT_FAILED } from '../exit.js';

/** Resolves when the process is asked to stop (SIGINT, SIGTERM). */
export function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    const handler = (signal: string) => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
      resolve(signal);
    };
    process.on('SIGINT', handler);
    process.on('SIGTERM', handler);
  });
}

export function registerRun(program: Command): void {
  program
    .command('run')
    .description(
      'the manager daemon: monitor, heartbeat, /metrics, webhook receiver, control API (a clusters: file or -c DIR: several clusters, one process, one listener)',
    )
    .requiredOption(
      '-c, --config <file>',
      'config file (one cluster, or a clusters: list), or a conf.d directory of such files',
    )
    .action(async (options: { config: string }) => {
      const configs = loadConfigs(options.config);
      const log = createLogger('switchyard');
      // Each cluster its own engine, lock, leadership, journal and monitor loop (so one
      // cluster's slow host never delays another's cycle); one listener serves them all.
      const daemon = new Daemon({ configs, log, extraRouters: daemonRouters });
      try {
        await daemon.start();
      } catch (error) {
        log.error(
          { event: 'daemon.start_failed', err: (error as Error).message },
          'could not start',
        );
        await daemon.stop().catch(() => undefined);
        throw new CliExit(EXIT_FAILED, `could not start: ${(error as Error).message}`);
      }
      const signal = await untilSignal();
      log.info({ event: 'daemon.stopping', signal }, 'stopping');
      await daemon.stop();
    });
}

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
      'the manager daemon: monitor, heartbeat, /metrics, webhook receiver, control API (-c DIR: one per cluster file, in one process)',
    )
    .requiredOption(
      '-c, --config <file>',
      'config file, or a conf.d directory with one file per cluster',
    )
    .action(async (options: { config: string }) => {
      const configs = loadConfigs(options.config);
      const log = createLogger('switchyard');
      const daemons: Daemon[] = [];
      try {
        // Each cluster its own daemon: engine, lock, leadership, listener, journal and monitor
        // loop, so one cluster's slow host never delays another's cycle.
        for (const config of configs) {
          // Process metrics are the same for every cluster of this process: exported once, by the first.
          const daemon = new Daemon({
            config,
            log: configs.length > 1 ? log.child({ cluster: config.cluster }) : log,
            extraRouters: daemonRouters,
            processMetrics: daemons.length === 0,
          });
          daemons.push(daemon);
          await daemon.start();
        }
      } catch (error) {
        log.error(
          { event: 'daemon.start_failed', err: (error as Error).message },
          'could not start',
        );
        await Promise.all(daemons.map((daemon) => daemon.stop().catch(() => undefined)));
        throw new CliExit(EXIT_FAILED, `could not start: ${(error as Error).message}`);
      }
      const signal = await untilSignal();
      log.info({ event: 'daemon.stopping', signal }, 'stopping');
      await Promise.all(daemons.map((daemon) => daemon.stop()));
    });
}

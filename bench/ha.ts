/**
 * bench/ha: several managers on etcd. Three `switchyard run` processes share a sandbox cluster
 * through a 3-member etcd on loopback ports; each run kills -9 the leader and measures:
 *   - until a surviving manager journals `ha.leadership_gained` (it has taken the state over);
 *   - until the first control command (a mode change, retried against every manager every 20 ms)
 *     is accepted by the new leader: the operator-visible "first action".
 * The killed manager is restarted (it follows) before the next run. Median of --runs (5).
 * Needs MariaDB and etcd. Run `npm run build` first (bin prefers dist/).
 *
 *   npx tsx bench/ha.ts [--runs 5] [--lease 5s]
 */
import type { TestContext } from 'node:test';
import { join } from 'node:path';
import { findFreePortRange } from '../src/sandbox/ports.js';
import { FAST_MONITOR, writeTestConfig } from '../test/support/daemon.js';
import { startTestEtcd } from '../test/support/etcd.js';
import { managerProcess, type ManagerProcess } from '../test/support/ha-managers.js';
import { startSandbox } from '../test/support/sandbox.js';
import { median, option, until } from './support.js';

const runs = Number(option('--runs', '5'));
const lease = option('--lease', '5s');

const cleanups: Array<() => unknown> = [];
const context = { after: (fn: () => unknown) => cleanups.push(fn) } as unknown as TestContext;

async function leaderOf(managers: ManagerProcess[]): Promise<ManagerProcess | undefined> {
  for (const manager of managers)
    if (manager.alive() && (await manager.leader()) === 1) return manager;
  return undefined;
}

async function main(): Promise<void> {
  const etcd = await startTestEtcd(context);
  const sandbox = await startSandbox(context, { masters: 2, replicas: 1 });
  const ports = await findFreePortRange(3);
  const managers = ['m1', 'm2', 'm3'].map((name, index) =>
    managerProcess(
      context,
      name,
      writeTestConfig(sandbox, `${name}.yml`, (raw) => {
        raw.monitor = FAST_MONITOR;
        raw.listen = `127.0.0.1:${ports + index}`;
        raw.state_dir = join(sandbox.dir, name);
        raw.ha = { etcd: { endpoints: etcd.endpoints, prefix: '/switchyard-bench' }, lease };
      }),
    ),
  );
  for (const manager of managers) manager.start();
  await until('a leader', () => leaderOf(managers), 60_000, 50);
  const gained: number[] = [];
  const acted: number[] = [];
  for (let run = 0; run < runs; run++) {
    const leader = (await until(
      'a leader',
      () => leaderOf(managers),
      60_000,
      50,
    )) as ManagerProcess;
    const mode = run % 2 === 0 ? 'manual' : 'active';
    const killedAt = Date.now();
    await leader.kill('SIGKILL');
    const others = managers.filter((manager) => manager !== leader);
    const accepted = await until(
      'a control command accepted',
      async () => {
        for (const manager of others) {
          const answer = await manager.api('PUT', '/mode', { mode }).catch(() => undefined);
          if (answer?.status === 200) return { manager, at: Date.now() };
        }
        return undefined;
      },
      60_000,
      20,
    );
    const entry = accepted.manager
      .journal()
      .find((item) => item.event === 'ha.leadership_gained' && item.at >= killedAt);
    gained.push((entry?.at ?? accepted.at) - killedAt);
    acted.push(accepted.at - killedAt);
    console.log(
      `run ${run + 1}: killed ${leader.name}; ${accepted.manager.name} leads after ${gained.at(-1)} ms, first command accepted after ${acted.at(-1)} ms`,
    );
    leader.start();
    await new Promise((resolve) => setTimeout(resolve, 1500));
  }
  console.log(
    `lease ${lease}, ${runs} runs: leadership gained median ${median(gained)} ms (${Math.min(...gained)}-${Math.max(...gained)}); first action median ${median(acted)} ms (${Math.min(...acted)}-${Math.max(...acted)})`,
  );
}

try {
  await main();
} finally {
  for (const cleanup of cleanups.reverse()) await cleanup();
}

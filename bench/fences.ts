/**
 * bench/fences: how fast a gray-failed writer is replaced, and what it acknowledged after the new
 * writer's promotion. Namespace hosts, MariaDB's defaults, Switchyard's shipped settings (1 s
 * interval, 1 s connect timeout, 3 failures, 3 s lease, fence.escalate kill). Writes every 10 ms
 * through the writer VIP, and a client on the writer's own host writing over its local socket.
 * Faults, each on a fresh cluster (the old writer often ends up with errant transactions):
 *   hang     the writer's mariadbd alone stopped (kill -STOP) for 20 s
 *   pause    every process of the writer's host stopped for 15 s (a paused VM)
 *   isolate  the writer's link down for 15 s
 *   login    the same, with every agent's local MySQL password file stale
 * For each: time from the fault to the promotion (read_only=OFF sent to the new writer) and to
 * the first write through the VIP after it; the old writer's last local acknowledgement
 * relative to the promotion (negative: before it), and how many came after it.
 *
 *   npx tsx bench/fences.ts [--runs 3] [--faults hang,pause,isolate,login] [--semi-sync]
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { startLocalWrites } from '../test/support/load.js';
import { startNetnsCluster, type NetnsCluster } from '../test/support/netns-cluster.js';
import { flag, median, option, startBenchDaemon, until, writerVipProbe } from './support.js';

const run = promisify(execFile);
const runs = Number(option('--runs', '3'));
const faults = option('--faults', 'hang,pause,isolate,login').split(',');
const semiSync = flag('--semi-sync');
const monitor = { interval: '1s', connect_timeout: '1s', failures_before_down: 3 };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function inject(cluster: NetnsCluster, fault: string): Promise<() => Promise<void>> {
  const host = cluster.nsHost('db1');
  switch (fault) {
    case 'hang': {
      const pid = cluster.instance('db1').pid() as number;
      process.kill(pid, 'SIGSTOP');
      return async () => resume([pid]);
    }
    case 'pause': {
      const { stdout } = await run('ip', ['netns', 'pids', host.namespace]);
      const pids = stdout
        .split('\n')
        .map(Number)
        .filter((pid) => pid > 0);
      for (const pid of pids) process.kill(pid, 'SIGSTOP');
      return async () => resume(pids);
    }
    case 'login':
      writeFileSync(cluster.agentPasswordFile, 'stale-password\n', { mode: 0o600 });
      await host.exec('ip', ['link', 'set', 'eth0', 'down']);
      return async () => void (await host.exec('ip', ['link', 'set', 'eth0', 'up']));
    case 'isolate':
      await host.exec('ip', ['link', 'set', 'eth0', 'down']);
      return async () => void (await host.exec('ip', ['link', 'set', 'eth0', 'up']));
    default:
      throw new Error(`unknown fault ${fault} (hang, pause, isolate, login)`);
  }
}

function resume(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // Stopped for good by the fence's escalation.
    }
  }
}

const holdMs: Record<string, number> = {
  hang: 20_000,
  pause: 15_000,
  isolate: 15_000,
  login: 15_000,
};
const results = new Map<
  string,
  Array<{ promoted: number; first: number; lastOld: number; late: number; afterResume?: number }>
>();

for (let round = 1; round <= runs; round++) {
  for (const fault of faults) {
    const cluster = await startNetnsCluster(undefined, { monitor, semiSync, preferFirst: false });
    try {
      const daemon = await startBenchDaemon(cluster.config);
      try {
        const probe = await writerVipProbe(cluster, daemon);
        probe.start();
        await until('writes through the VIP', () => probe.acked().length > 50, 30_000, 50);
        const local = startLocalWrites(cluster, 'db1');
        await sleep(1000);
        const faultAt = Date.now();
        const end = await inject(cluster, fault);
        await until(
          'db2 promoted',
          () => daemon.status().roles.writer?.[cluster.writerVip] === 'db2',
          holdMs[fault] as number,
          20,
        );
        await sleep(Math.max(0, faultAt + (holdMs[fault] as number) - Date.now()));
        await end();
        const resumedAt = Date.now();
        await sleep(3000);
        const acks = await local.stop();
        await probe.stop();
        const promotedAt = daemon.journal
          .read()
          .find(
            (entry) =>
              entry.at >= faultAt &&
              entry.host === 'db2' &&
              entry.event === 'mysql.set_read_only' &&
              entry.phase === 'before',
          )?.at as number;
        const first = probe.acked().find((record) => (record.ackedAt as number) >= promotedAt)
          ?.ackedAt as number;
        const lastOld = Math.max(...acks) - promotedAt;
        const lateAcks = acks.filter((at) => at >= promotedAt);
        const late = lateAcks.length;
        // A paused host's late acknowledgements come after its resume: how long after.
        const afterResume = late ? Math.max(...lateAcks) - resumedAt : undefined;
        const entry = {
          promoted: promotedAt - faultAt,
          first: first - faultAt,
          lastOld,
          late,
          afterResume,
        };
        results.set(fault, [...(results.get(fault) ?? []), entry]);
        console.log(
          `${fault} round ${round}: promoted ${entry.promoted} ms, first write through the VIP ${entry.first} ms after the fault; old writer's last local ack ${lastOld} ms relative to the promotion, ${late} after it${afterResume === undefined ? '' : ` (the last ${afterResume} ms after the resume)`}`,
        );
      } finally {
        await daemon.stop();
      }
    } finally {
      await cluster.destroy();
    }
  }
}

console.log('');
console.log(
  `${semiSync ? 'semi-sync (AFTER_SYNC, 10 s timeout)' : 'asynchronous'} replication; monitor ${JSON.stringify(monitor)}, lease 3s, fence.escalate kill, MariaDB defaults; ${runs} run(s) per fault, a fresh cluster each`,
);
for (const [fault, list] of results)
  console.log(
    `${fault}: promotion median ${median(list.map((item) => item.promoted))} ms (range ${Math.min(...list.map((item) => item.promoted))}-${Math.max(...list.map((item) => item.promoted))}), first write median ${median(list.map((item) => item.first))} ms; old writer's last ack median ${median(list.map((item) => item.lastOld))} ms relative to the promotion; acks after the promotion: ${list.map((item) => `${item.late}${item.afterResume === undefined ? '' : ` (last ${item.afterResume} ms after the resume)`}`).join(', ')}`,
  );
process.exit(0);

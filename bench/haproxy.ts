/**
 * bench/haproxy: the same faults with the client writing through a real HAProxy and through the
 * writer VIP, runs interleaved (HAProxy, VIP, HAProxy, VIP, ...), one fresh namespace cluster per
 * run. Switchyard's shipped monitor defaults (1 s interval, 1 s connect timeout, 3 failures,
 * 3 s lease) and MariaDB's defaults; the HAProxy as docs/routing.md recommends: pushed by the
 * manager through its runtime API and polling each agent's /health/writer with
 * `inter 1s fall 1 rise 1 on-marked-down shutdown-sessions`. A client writes every 10 ms (connect
 * timeout 300 ms). Each run, on one cluster:
 *   1. kill -9 of db1's mariadbd: time to the first write on the new writer (db2);
 *   2. db1 restarts, is set online; a switchover db2 -> db1 under the load: the write pause, then
 *      the acknowledged writes missing on db1 (everything so far);
 *   3. db1's link goes down (silent loss, no TCP reset): time to the first write on db2.
 * Needs root.
 *
 *   npx tsx bench/haproxy.ts [--runs 5]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Daemon } from '../src/daemon/daemon.js';
import { findFreePortRange } from '../src/sandbox/ports.js';
import { routableServers, startHaproxy, type TestHaproxy } from '../test/support/haproxy.js';
import { MYSQL_PORT, startNetnsCluster, type NetnsCluster } from '../test/support/netns-cluster.js';
import { WriteProbe } from '../test/support/write-probe.js';
import { median, option, startBenchDaemon, until } from './support.js';

const runs = Number(option('--runs', '5'));
const monitor = { interval: '1s', connect_timeout: '1s', failures_before_down: 3 };
type Path = 'haproxy' | 'vip';
interface Result {
  path: Path;
  killMs: number;
  switchoverPauseMs: number;
  missingAfterKillAndSwitchover: number;
  silentMs: number;
  missingAfterSilent: number;
}
const results: Result[] = [];

/** An HAProxy in front of the two masters, as docs/routing.md recommends; its writer frontend's port. */
async function recommendedHaproxy(
  cluster: NetnsCluster,
  dir: string,
  admin: string,
): Promise<{ front: number; haproxy: TestHaproxy }> {
  const front = await findFreePortRange(1);
  const servers = ['db1', 'db2']
    .map(
      (host) =>
        `  server ${host} ${cluster.nsHost(host).address}:${MYSQL_PORT} disabled check port 9106`,
    )
    .join('\n');
  const haproxy = await startHaproxy(
    undefined,
    dir,
    'bench',
    { socket: admin },
    `frontend mysql_writes
  bind 127.0.0.1:${front}
  default_backend mysql_writer
backend mysql_writer
  option httpchk GET /health/writer
  http-check expect status 200
  default-server inter 1s fall 1 rise 1 on-marked-down shutdown-sessions
${servers}
`,
  );
  return { front, haproxy };
}

const writerOf = (daemon: Daemon, cluster: NetnsCluster) =>
  daemon.status().roles.writer?.[cluster.writerVip];

async function oneRun(path: Path, run: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-bench-haproxy-'));
  const admin = join(dir, 'admin.sock');
  const cluster = await startNetnsCluster(undefined, {
    monitor,
    preferFirst: false,
    managerConfig:
      path === 'haproxy'
        ? {
            routing: {
              haproxy: [{ name: 'bench', socket: admin, backends: { writer: 'mysql_writer' } }],
            },
          }
        : {},
  });
  let haproxy: TestHaproxy | undefined;
  try {
    const front = path === 'haproxy' ? await recommendedHaproxy(cluster, dir, admin) : undefined;
    haproxy = front?.haproxy;
    const daemon = await startBenchDaemon(cluster.config);
    try {
      await until('db1 the writer', () => writerOf(daemon, cluster) === 'db1', 30_000, 50);
      if (front)
        await until(
          'db1 the only routable server at HAProxy',
          async () => (await routableServers(admin, 'mysql_writer')).join() === 'db1',
          30_000,
          50,
        );
      const probe = new WriteProbe({
        host: front ? '127.0.0.1' : cluster.writerVip,
        port: front ? front.front : MYSQL_PORT,
        user: cluster.appUser.user,
        password: cluster.appUser.password,
        table: 'app.writes',
        intervalMs: 10,
        connectTimeoutMs: 300,
      });
      probe.start();
      await until('writes', () => probe.acked().length > 100, 30_000, 20);

      const killedAt = Date.now();
      await cluster.instance('db1').kill();
      // A write sent after the kill (plus the command's own few ms) can only land on the new writer.
      const firstAfterKill = await until(
        'a write on db2',
        () => probe.firstAckOfWriteSentAfter(killedAt + 50),
        60_000,
      );

      await cluster.instance('db1').start();
      await until(
        'db1 back and held',
        () =>
          daemon.status().hosts.find((host) => host.name === 'db1')?.state === 'AWAITING_RECOVERY',
        60_000,
        100,
      );
      await until(
        'db1 replicating',
        async () =>
          (await cluster.instance('db1').sql('SHOW SLAVE STATUS'))[0]?.Slave_IO_Running === 'Yes',
        30_000,
        100,
      );
      const online = await daemon.engine.setOnline('db1');
      if (!online.ok) throw new Error(`set-online db1 refused: ${online.detail}`);
      await new Promise((resolve) => setTimeout(resolve, 2000));
      const switchStarted = Date.now();
      const moved = await daemon.engine.moveRole('writer', 'db1', { force: false });
      if (!moved.ok) throw new Error(`switchover to db1 refused: ${moved.detail}`);
      const switchFinished = Date.now();
      await until(
        'a write after the switchover',
        () => probe.firstAckAfter(switchFinished),
        30_000,
      );
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const pause = probe.longestPause(switchStarted - 200).pauseMs;
      await probe.pause();
      const db1 = await cluster.instance('db1').rootConnection();
      const missingAfterSwitchover = (await probe.missingAcked(db1)).length;
      db1.destroy();
      probe.resume();
      await until('writes on db1', () => probe.firstAckAfter(Date.now() - 100), 10_000);

      await cluster.nsHost('db1').exec('ip', ['link', 'set', 'eth0', 'down']);
      const cutAt = Date.now();
      const firstAfterCut = await until(
        'a write on db2 after the cut',
        () => probe.firstAckOfWriteSentAfter(cutAt),
        120_000,
      );
      await new Promise((resolve) => setTimeout(resolve, 1000));
      await probe.stop();
      const db2 = await cluster.instance('db2').rootConnection();
      const missingAfterSilent = (await probe.missingAcked(db2)).length;
      db2.destroy();
      const result: Result = {
        path,
        killMs: firstAfterKill - killedAt,
        switchoverPauseMs: pause,
        missingAfterKillAndSwitchover: missingAfterSwitchover,
        silentMs: firstAfterCut - cutAt,
        missingAfterSilent,
      };
      results.push(result);
      console.log(
        `run ${run} through ${path === 'haproxy' ? 'HAProxy' : 'the VIP'}: kill -9 -> first write on the new writer ${result.killMs} ms; switchover write pause ${result.switchoverPauseMs} ms (move took ${switchFinished - switchStarted} ms); acknowledged writes missing after kill and switchover ${result.missingAfterKillAndSwitchover} (of ${probe.acked().length}); silent host loss -> first write on the new writer ${result.silentMs} ms; missing after it ${result.missingAfterSilent}`,
      );
    } finally {
      await daemon.stop();
    }
  } finally {
    haproxy?.kill();
    await cluster.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

for (let run = 1; run <= runs; run++)
  for (const path of ['haproxy', 'vip'] as const) await oneRun(path, run);

const summary = (values: number[]) =>
  `median ${median(values)} ms, range ${Math.min(...values)}-${Math.max(...values)} ms`;
console.log('');
console.log(
  `monitor ${JSON.stringify(monitor)} (shipped defaults), lease 3s, MariaDB defaults; HAProxy pushed + httpchk inter 1s fall 1 rise 1; client every 10 ms, connect timeout 300 ms; ${runs} runs each, interleaved`,
);
for (const path of ['haproxy', 'vip'] as const) {
  const mine = results.filter((result) => result.path === path);
  console.log(`through ${path === 'haproxy' ? 'HAProxy' : 'the VIP'} (${mine.length} runs):`);
  console.log(`  kill -9 -> first write on the new writer: ${summary(mine.map((r) => r.killMs))}`);
  console.log(
    `  silent host loss -> first write on the new writer: ${summary(mine.map((r) => r.silentMs))}`,
  );
  console.log(`  switchover write pause: ${summary(mine.map((r) => r.switchoverPauseMs))}`);
  console.log(
    `  acknowledged writes lost: after kill -9 and switchover ${mine.reduce((sum, r) => sum + r.missingAfterKillAndSwitchover, 0)}; after the silent loss ${mine.reduce((sum, r) => sum + r.missingAfterSilent, 0)}`,
  );
}
const difference = (pick: (result: Result) => number) =>
  median(results.filter((r) => r.path === 'haproxy').map(pick)) -
  median(results.filter((r) => r.path === 'vip').map(pick));
console.log(
  `HAProxy minus VIP, medians: kill -9 ${difference((r) => r.killMs)} ms, silent loss ${difference((r) => r.silentMs)} ms, switchover pause ${difference((r) => r.switchoverPauseMs)} ms`,
);
// Everything was stopped and removed above; do not wait for idle keep-alive sockets to time out.
process.exit(0);

/**
 * bench/hostcrash: the writer's host vanishes (its link goes down: no TCP reset, as in a power
 * loss or kernel panic) under a write load through the writer VIP, with MariaDB's defaults
 * (slave_net_timeout 60 s) and Switchyard's default monitor settings (1 s interval, 1 s connect
 * timeout, 3 failures, 3 s lease). A client on the writer's own host keeps writing over the local
 * socket. Reports the time to the first write through the VIP on the new writer, and the writes
 * the isolated side accepted after the new writer's first one (must be 0). Then kill -9 of the
 * writer's mariadbd on the same settings, the old writer restarted and set online between kills;
 * when it comes back with transactions the new writer lacks (asynchronous replication: written to
 * its binary log, not yet sent, when it was killed), set-online refuses, the bench names those
 * transactions and goes on on a fresh cluster. A fresh cluster per link-down run: the isolated
 * side's local writes are errant, so that host would need a reseed. Needs root.
 *
 *   npx tsx bench/hostcrash.ts [--runs 5] [--kill-runs 5] [--interval 1s] [--connect-timeout 300ms]
 *     [--timeline DIR]
 */
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDuration } from '../src/config/duration.js';
import { startLocalWrites } from '../test/support/load.js';
import { startNetnsCluster } from '../test/support/netns-cluster.js';
import {
  describeTransactions,
  median,
  option,
  startBenchDaemon,
  until,
  writerVipProbe,
} from './support.js';

const runs = Number(option('--runs', '5'));
const killRuns = Number(option('--kill-runs', '5'));
const interval = option('--interval', '1s');
const monitor = { interval, connect_timeout: '1s', failures_before_down: 3 };
// --timeline DIR: keep each kill's journal and daemon log there (what the manager saw, step by step).
const timelineDir = option('--timeline', '');
// --connect-timeout: the write client's connect timeout (see the README on the VIP gap).
const connectTimeoutMs = parseDuration(option('--connect-timeout', '300ms'));

const linkDown: number[] = [];
const lateIsolated: number[] = [];
for (let run = 1; run <= runs; run++) {
  const cluster = await startNetnsCluster(undefined, { monitor });
  try {
    const daemon = await startBenchDaemon(cluster.config);
    try {
      const probe = await writerVipProbe(cluster, daemon);
      probe.start();
      await until('writes through the VIP', () => probe.acked().length > 50, 30_000, 50);
      const local = startLocalWrites(cluster, 'db1');
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const cutAt = Date.now();
      await cluster.nsHost('db1').exec('ip', ['link', 'set', 'eth0', 'down']);
      const first = await until(
        'a write on the new writer',
        () => probe.firstAckOfWriteSentAfter(cutAt + 50),
        120_000,
        5,
      );
      await new Promise((resolve) => setTimeout(resolve, 2000));
      const isolated = await local.stop();
      await probe.stop();
      const late = isolated.filter((at) => at >= first).length;
      linkDown.push(first - cutAt);
      lateIsolated.push(late);
      console.log(
        `link-down run ${run}: first write on the new writer ${first - cutAt} ms after the cut; isolated side: last write ${isolated.length ? Math.max(...isolated) - cutAt : '-'} ms after the cut, ${late} accepted after the new writer's first`,
      );
    } finally {
      await daemon.stop();
    }
  } finally {
    await cluster.destroy();
  }
}

const kills: number[] = [];
let lost = 0;
/**
 * Kills after which the old writer came back with transactions the new writer lacked. With
 * asynchronous replication a transaction the killed mysqld had written to its binary log but not
 * yet sent is lost to the others; Switchyard then holds that host (set-online refuses) until the
 * operator rejoins it. The bench says what those transactions were and goes on on a fresh cluster.
 */
const errantAfterKill: string[] = [];
let clustersUsed = 0;
while (kills.length < killRuns) {
  const cluster = await startNetnsCluster(undefined, { monitor });
  clustersUsed++;
  try {
    const daemon = await startBenchDaemon(cluster.config);
    try {
      const probe = await writerVipProbe(cluster, daemon, connectTimeoutMs);
      probe.start();
      while (kills.length < killRuns) {
        const run = kills.length + 1;
        const writer = daemon.status().roles.writer?.[cluster.writerVip] as string;
        await until(
          'writes through the VIP',
          () => probe.firstAckAfter(Date.now() - 500),
          30_000,
          20,
        );
        const killedAt = Date.now();
        await cluster.instance(writer).kill();
        const first = await until(
          'a write on the new writer',
          () => probe.firstAckOfWriteSentAfter(killedAt + 50),
          60_000,
          5,
        );
        kills.push(first - killedAt);
        if (timelineDir) {
          mkdirSync(timelineDir, { recursive: true });
          writeFileSync(
            join(timelineDir, `kill-${run}.json`),
            JSON.stringify({ killedAt, first, stateDir: cluster.config.state_dir }),
          );
          cpSync(
            join(cluster.config.state_dir, 'journal.jsonl'),
            join(timelineDir, `kill-${run}.journal.jsonl`),
          );
          cpSync(
            join(cluster.config.state_dir, '..', 'daemon.log'),
            join(timelineDir, `kill-${run}.daemon.log`),
          );
          cpSync(
            join(cluster.config.state_dir, '..', `agent-${writer}.log`),
            join(timelineDir, `kill-${run}.agent-${writer}.log`),
          );
        }
        console.log(
          `kill -9 run ${run}: ${writer} killed; first write on the new writer ${first - killedAt} ms later`,
        );
        if (kills.length >= killRuns) break;
        await cluster.instance(writer).start();
        await until(
          `${writer} back and held`,
          () =>
            daemon.status().hosts.find((host) => host.name === writer)?.state ===
            'AWAITING_RECOVERY',
          60_000,
          100,
        );
        await until(
          `${writer} replicating`,
          async () =>
            (await cluster.instance(writer).sql('SHOW SLAVE STATUS'))[0]?.Slave_IO_Running ===
            'Yes',
          30_000,
          100,
        );
        const online = await daemon.engine.setOnline(writer);
        if (!online.ok) {
          if (!online.errant?.length)
            throw new Error(`set-online ${writer} refused: ${online.detail}`);
          const what = `transactions the new writer lacks: ${await describeTransactions(
            cluster.instance(writer),
            online.errant,
          )}`;
          errantAfterKill.push(`run ${run}: ${writer} ${what}`);
          console.log(
            `kill -9 run ${run}: ${writer} came back with ${what}; a fresh cluster for the next run`,
          );
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, 3000));
      }
      await probe.stop();
      const writer = daemon.status().roles.writer?.[cluster.writerVip] as string;
      const connection = await cluster.instance(writer).rootConnection();
      lost += (await probe.missingAcked(connection)).length;
      connection.destroy();
    } finally {
      await daemon.stop();
    }
  } finally {
    await cluster.destroy();
  }
}

console.log('');
console.log(
  `monitor ${JSON.stringify(monitor)}, lease 3s, MariaDB defaults; kill -9 client connect timeout ${connectTimeoutMs} ms`,
);
if (linkDown.length)
  console.log(
    `link down (silent), ${linkDown.length} runs: first write on the new writer median ${median(linkDown)} ms, worst ${Math.max(...linkDown)} ms; isolated-side writes after the new writer's first: ${lateIsolated.reduce((a, b) => a + b, 0)}`,
  );
if (kills.length)
  console.log(
    `kill -9, ${kills.length} runs: median ${median(kills)} ms, worst ${Math.max(...kills)} ms; acknowledged writes lost: ${lost}; the killed writer came back with transactions the new writer lacked after ${errantAfterKill.length} of ${kills.length} kills${errantAfterKill.length ? ` (${errantAfterKill.join('; ')})` : ''}; clusters used: ${clustersUsed}`,
  );
// Everything was stopped and removed above; do not wait for idle keep-alive sockets to time out.
process.exit(0);

/**
 * bench/failover: kill -9 of the writer's mariadbd while a client writes through the writer VIP
 * every 10 ms; reports the time to the first successful write on the new writer and the
 * acknowledged writes missing afterwards. Namespace hosts with real VIPs and agents; needs root.
 *
 *   npx tsx bench/failover.ts [--runs 5] [--semi-sync]
 */
import { startNetnsCluster } from '../test/support/netns-cluster.js';
import { flag, median, option, startBenchDaemon, until, writerVipProbe } from './support.js';

const runs = Number(option('--runs', '5'));
const semiSync = flag('--semi-sync');
const results: Array<{ run: number; recoveryMs: number; promotedMs: number; acked: number; missing: number }> = [];

for (let run = 1; run <= runs; run++) {
  const cluster = await startNetnsCluster(undefined, { semiSync });
  try {
    const daemon = await startBenchDaemon(cluster.config);
    try {
      const probe = await writerVipProbe(cluster, daemon);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      probe.start();
      await new Promise((resolve) => setTimeout(resolve, 2000));
      const killedAt = Date.now();
      await cluster.instance('db1').kill();
      const promotedAt = await until('the writer role to move', () => (daemon.status().roles.writer?.[cluster.writerVip] === 'db2' ? Date.now() : undefined), 60_000);
      const firstWrite = await until('a write through the VIP on the new writer', () => probe.firstAckAfter(killedAt), 60_000);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      await probe.stop();
      const connection = await cluster.instance('db2').rootConnection();
      const missing = await probe.missingAcked(connection);
      connection.destroy();
      results.push({ run, recoveryMs: firstWrite - killedAt, promotedMs: promotedAt - killedAt, acked: probe.acked().length, missing: missing.length });
      console.log(`run ${run}: first write on the new writer ${firstWrite - killedAt} ms after kill -9 (role moved at ${promotedAt - killedAt} ms); ${probe.acked().length} acknowledged writes, ${missing.length} missing`);
    } finally {
      await daemon.stop();
    }
  } finally {
    await cluster.destroy();
  }
}

console.log('');
console.log(`failover (${semiSync ? 'semi-sync AFTER_SYNC' : 'asynchronous'} replication, monitor interval 300 ms, failures_before_down 3, connect_timeout 500 ms)`);
console.log(`  runs: ${results.length}`);
console.log(`  time to first write on the new writer: median ${median(results.map((r) => r.recoveryMs))} ms, min ${Math.min(...results.map((r) => r.recoveryMs))}, max ${Math.max(...results.map((r) => r.recoveryMs))}`);
console.log(`  acknowledged writes missing: ${results.map((r) => r.missing).join(', ')} (total ${results.reduce((sum, r) => sum + r.missing, 0)})`);

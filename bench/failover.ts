/**
 * bench/failover: kill -9 of the writer's mariadbd while a client writes through the writer VIP
 * every 10 ms; reports the time to the first successful write on the new writer and the
 * acknowledged writes missing afterwards. Namespace hosts with real VIPs and agents; needs root.
 *
 * With --tls every run is done twice, plaintext and with TLS everywhere (mysqld and replication,
 * manager -> MySQL with verify_identity, mutual TLS to and between agents), alternating, and both
 * medians are printed: the cost of TLS on failover time in one run of the benchmark.
 *
 * --timeline prints, for each run, the journal from the kill to the first write on the new
 * writer: which step the time went to (with --tls, what TLS adds to each).
 *
 *   npx tsx bench/failover.ts [--runs 5] [--semi-sync] [--tls] [--timeline]
 */
import { startNetnsCluster } from '../test/support/netns-cluster.js';
import {
  flag,
  formatTimeline,
  median,
  option,
  readJournal,
  startBenchDaemon,
  until,
  writerVipProbe,
} from './support.js';

const runs = Number(option('--runs', '5'));
const semiSync = flag('--semi-sync');
const modes = flag('--tls') ? [false, true] : [false];
const timeline = flag('--timeline');
type Result = {
  run: number;
  tls: boolean;
  recoveryMs: number;
  promotedMs: number;
  acked: number;
  missing: number;
};
const results: Result[] = [];

for (let index = 0; index < runs * modes.length; index++) {
  const run = Math.floor(index / modes.length) + 1;
  const tls = modes[index % modes.length] as boolean;
  const cluster = await startNetnsCluster(undefined, { semiSync, tls });
  try {
    const daemon = await startBenchDaemon(cluster.config);
    try {
      const probe = await writerVipProbe(cluster, daemon);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      probe.start();
      await new Promise((resolve) => setTimeout(resolve, 2000));
      const killedAt = Date.now();
      await cluster.instance('db1').kill();
      const promotedAt = await until(
        'the writer role to move',
        () =>
          daemon.status().roles.writer?.[cluster.writerVip] === 'db2' ? Date.now() : undefined,
        60_000,
      );
      const firstWrite = await until(
        'a write through the VIP on the new writer',
        // Only writes sent after the kill count: one acknowledged by db1 at the instant of the kill is
        // not a write on the new writer (the kill command itself takes a few ms).
        () => probe.firstAckOfWriteSentAfter(killedAt + 50),
        60_000,
      );
      await new Promise((resolve) => setTimeout(resolve, 1000));
      await probe.stop();
      const connection = await cluster.instance('db2').rootConnection();
      const missing = await probe.missingAcked(connection);
      connection.destroy();
      results.push({
        run,
        tls,
        recoveryMs: firstWrite - killedAt,
        promotedMs: promotedAt - killedAt,
        acked: probe.acked().length,
        missing: missing.length,
      });
      console.log(
        `run ${run}${modes.length > 1 ? (tls ? ' (TLS)' : ' (plaintext)') : ''}: first write on the new writer ${firstWrite - killedAt} ms after kill -9 (role moved at ${promotedAt - killedAt} ms); ${probe.acked().length} acknowledged writes, ${missing.length} missing`,
      );
      if (timeline)
        console.log(
          `  journal from the kill: ${formatTimeline(
            readJournal(cluster.config.state_dir).filter((entry) => entry.at <= firstWrite),
            killedAt,
          )}`,
        );
    } finally {
      await daemon.stop();
    }
  } finally {
    await cluster.destroy();
  }
}

console.log('');
console.log(
  `failover (${semiSync ? 'semi-sync AFTER_SYNC' : 'asynchronous'} replication, monitor interval 300 ms, failures_before_down 3, connect_timeout 500 ms)`,
);
for (const tls of modes) {
  const mine = results.filter((r) => r.tls === tls);
  if (modes.length > 1) console.log(tls ? 'TLS everywhere:' : 'plaintext:');
  console.log(`  runs: ${mine.length}`);
  console.log(
    `  time to first write on the new writer: median ${median(mine.map((r) => r.recoveryMs))} ms, min ${Math.min(...mine.map((r) => r.recoveryMs))}, max ${Math.max(...mine.map((r) => r.recoveryMs))}`,
  );
  console.log(
    `  acknowledged writes missing: ${mine.map((r) => r.missing).join(', ')} (total ${mine.reduce((sum, r) => sum + r.missing, 0)})`,
  );
  if (modes.length > 1)
    console.log(
      `  writer role moved: median ${median(mine.map((r) => r.promotedMs))} ms, min ${Math.min(...mine.map((r) => r.promotedMs))}, max ${Math.max(...mine.map((r) => r.promotedMs))}`,
    );
}
if (modes.length > 1) {
  const plain = median(results.filter((r) => !r.tls).map((r) => r.recoveryMs));
  const secure = median(results.filter((r) => r.tls).map((r) => r.recoveryMs));
  console.log(
    `TLS cost on the median first write: ${secure - plain} ms (${(((secure - plain) / plain) * 100).toFixed(1)} %; target within 10 %)`,
  );
  const plainMove = median(results.filter((r) => !r.tls).map((r) => r.promotedMs));
  const secureMove = median(results.filter((r) => r.tls).map((r) => r.promotedMs));
  console.log(
    `TLS cost on the median role move: ${secureMove - plainMove} ms (${(((secureMove - plainMove) / plainMove) * 100).toFixed(1)} %)`,
  );
}

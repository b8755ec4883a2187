/**
 * bench/switchover: a client writes through the writer VIP every 10 ms while `move-role writer`
 * moves the role db1 -> db2 -> db1 ...; reports the write pause (longest gap between
 * acknowledged writes around each move) and acknowledged writes missing afterwards. Needs root.
 *
 * With --alert, each move is triggered the way a node alert would trigger it: one firing
 * `NodeDiskFailing{host=<writer>}` webhook with a `move_role writer` rule, so the engine picks
 * the target itself; the success rate is reported (a refused move is counted, not fatal).
 *
 * --timeline prints each move's journal entries with their offsets from the start of the move.
 *
 *   npx tsx bench/switchover.ts [--runs 5] [--semi-sync] [--alert] [--timeline]
 */
import { startNetnsCluster } from '../test/support/netns-cluster.js';
import { flag, median, option, startBenchDaemon, until, writerVipProbe } from './support.js';

const runs = Number(option('--runs', '5'));
const semiSync = flag('--semi-sync');
const viaAlert = flag('--alert');
const timeline = flag('--timeline');
const cluster = await startNetnsCluster(undefined, {
  semiSync,
  preferFirst: !viaAlert,
  extraRules: viaAlert ? [{ alert: 'NodeDiskFailing', action: 'move_role', role: 'writer' }] : [],
});
let refusedMoves = 0;
const pauses: number[] = [];
let missingTotal: number;
let ackedTotal: number;
try {
  const daemon = await startBenchDaemon(cluster.config);
  try {
    const probe = await writerVipProbe(cluster, daemon);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    probe.start();
    for (let run = 1; run <= runs; run++) {
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const holder = daemon.status().roles.writer?.[cluster.writerVip] as string;
      const target = holder === 'db1' ? 'db2' : 'db1';
      const started = Date.now();
      if (viaAlert) {
        const alert = {
          status: 'firing' as const,
          name: 'NodeDiskFailing',
          labels: { alertname: 'NodeDiskFailing', host: holder },
          annotations: {},
          startsAt: new Date(started).toISOString(),
          fingerprint: `disk-${run}`,
        };
        const [decision] = await daemon.engine.handleAlerts([alert]);
        if (
          decision?.decision !== 'acted' ||
          daemon.status().roles.writer?.[cluster.writerVip] === holder
        ) {
          refusedMoves += 1;
          console.log(`run ${run}: REFUSED: ${decision?.reason}`);
          continue;
        }
        // The alert resolves once the disk is replaced; the host may hold the writer again.
        await daemon.engine.handleAlerts([
          { ...alert, status: 'resolved', endsAt: new Date().toISOString() },
        ]);
      } else {
        const result = await daemon.engine.moveRole('writer', target, { force: false });
        if (!result.ok) throw new Error(`switchover to ${target} refused: ${result.detail}`);
      }
      const finished = Date.now();
      await until('a write after the switchover', () => probe.firstAckAfter(finished), 30_000);
      const pause = probe.longestPause(started - 200).pauseMs;
      pauses.push(pause);
      console.log(
        `run ${run}: writer -> ${target} in ${finished - started} ms; longest write pause ${pause} ms`,
      );
      if (timeline)
        for (const entry of daemon.journal.read().filter((item) => item.at >= started))
          console.log(
            `  +${entry.at - started} ms ${entry.phase} ${entry.event} ${entry.host ?? ''} ${(entry.reason ?? entry.detail ?? '').slice(0, 120)}`,
          );
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await probe.stop();
    const writer = daemon.status().roles.writer?.[cluster.writerVip] as string;
    const connection = await cluster.instance(writer).rootConnection();
    missingTotal = (await probe.missingAcked(connection)).length;
    connection.destroy();
    ackedTotal = probe.acked().length;
  } finally {
    await daemon.stop();
  }
} finally {
  await cluster.destroy();
}
console.log('');
console.log(
  `switchover (${semiSync ? 'semi-sync AFTER_SYNC' : 'asynchronous'} replication${viaAlert ? ', triggered by a node alert' : ''}): ${pauses.length} of ${runs} moves succeeded${refusedMoves ? `, ${refusedMoves} refused` : ''}`,
);
console.log(
  `  write pause: median ${median(pauses)} ms (${Math.min(...pauses)}-${Math.max(...pauses)})`,
);
console.log(`  acknowledged writes: ${ackedTotal}, missing afterwards: ${missingTotal}`);

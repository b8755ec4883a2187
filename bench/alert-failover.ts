/**
 * bench/alert-failover: kill -9 of the writer -> first successful write through the writer VIP,
 * when only the alert path may act (triggers.monitor: false). Prometheus and Alertmanager run
 * the shipped deploy/prometheus.yml, deploy/alertmanager.yml and alerts/ verbatim: only
 * addresses, the rule file path and the token file are substituted, and no command-line flags
 * are added. Namespace hosts with real VIPs and agents; needs root.
 *
 *   npx tsx bench/alert-failover.ts [--runs 5] [--monitor-defaults]
 *
 * --monitor-defaults: the manager's default monitor settings (1 s interval, 1 s connect timeout,
 * 3 failures) instead of the test cluster's fast ones (300 ms, 500 ms, 3).
 */
import { join } from 'node:path';
import { startNetnsCluster } from '../test/support/netns-cluster.js';
import { startShippedAlertmanager, startShippedPrometheus } from '../test/support/prometheus.js';
import { flag, median, option, startBenchDaemon, until, writerVipProbe } from './support.js';

const runs = Number(option('--runs', '5'));
const monitorDefaults = flag('--monitor-defaults');
const results: number[] = [];
const lost: number[] = [];
for (let run = 1; run <= runs; run++) {
  const cluster = await startNetnsCluster(undefined, {
    triggers: { monitor: false, alertmanager: true },
    ...(monitorDefaults
      ? { monitor: { interval: '1s', connect_timeout: '1s', failures_before_down: 3 } }
      : {}),
  });
  const cleanups: Array<() => Promise<void>> = [];
  try {
    const daemon = await startBenchDaemon(cluster.config);
    cleanups.push(() => daemon.stop());
    const alertmanager = await startShippedAlertmanager(undefined, {
      webhookUrl: `http://127.0.0.1:${cluster.listenPort}/api/v1/alerts`,
      credentialsFile: join(cluster.dir, 'token'),
    });
    cleanups.push(() => alertmanager.stop());
    const prometheus = await startShippedPrometheus(undefined, {
      target: `127.0.0.1:${cluster.listenPort}`,
      alertmanager: alertmanager.url,
    });
    cleanups.push(() => prometheus.stop());
    const probe = await writerVipProbe(cluster, daemon);
    // A Watchdog fired before Prometheus discovered Alertmanager is resent only after the default
    // 1 m resend delay: allow for it (start-up only, not part of the measured path).
    await until(
      'the alerting pipeline (watchdog) to be up',
      () => daemon.engine.pipelineUp(),
      120_000,
      100,
    );
    probe.start();
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const killedAt = Date.now();
    await cluster.instance('db1').kill();
    const firstWrite = await until(
      'a write through the VIP on the new writer',
      // Only writes sent after the kill count: one acknowledged by db1 at the instant of the kill is
      // not a write on the new writer (the kill command itself takes a few ms).
      () => probe.firstAckOfWriteSentAfter(killedAt + 50),
      90_000,
    );
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await probe.stop();
    const viaAlert = daemon.engine.pipelineUp();
    const connection = await cluster.instance('db2').rootConnection();
    const missing = await probe.missingAcked(connection);
    connection.destroy();
    results.push(firstWrite - killedAt);
    lost.push(missing.length);
    // Which alerts reached the engine, and when: the evidence that the alert path acted.
    const alerts = daemon.journal
      .read()
      .filter(
        (entry) =>
          entry.at >= killedAt &&
          entry.event.startsWith('alert.') &&
          entry.inputs?.alert !== 'Watchdog',
      )
      .map(
        (entry) =>
          `${entry.event} ${String(entry.inputs?.alert ?? '')} ${entry.host ?? ''} +${entry.at - killedAt} ms`,
      );
    console.log(`run ${run}: alerts after the kill: ${alerts.join('; ') || 'none'}`);
    console.log(
      `run ${run}: first write on the new writer ${firstWrite - killedAt} ms after kill -9 (pipeline up, monitor trigger off: ${viaAlert}); ${probe.acked().length} acknowledged writes, ${missing.length} missing`,
    );
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    await cluster.destroy();
  }
}
console.log('');
console.log(
  `alert-driven failover on the shipped deploy/prometheus.yml, deploy/alertmanager.yml and alerts/ (switchyard job scraped every 1 s, rule group switchyard-actions every 1 s, SwitchyardWriterDown for 0s, its Alertmanager route group_wait 0s and resent every 2 s), triggers.monitor false, monitor ${monitorDefaults ? '1 s x 3 failures, connect timeout 1 s (defaults)' : '300 ms x 3 failures, connect timeout 500 ms'}`,
);
console.log(
  `  time to first write on the new writer: median ${median(results)} ms, min ${Math.min(...results)}, max ${Math.max(...results)} (${results.length} runs)`,
);
console.log(`  acknowledged writes missing: ${lost.join(', ')} (asynchronous replication)`);

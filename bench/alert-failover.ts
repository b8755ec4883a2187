/**
 * bench/alert-failover: kill -9 of the writer -> first successful write through the writer VIP,
 * when only the alert path may act (triggers.monitor: false): real Prometheus (1 s scrape and
 * evaluation, fast rules: for 1-2 s) and Alertmanager (group_wait 0s) deliver the webhook.
 * Namespace hosts with real VIPs and agents; needs root.
 *
 *   npx tsx bench/alert-failover.ts [--runs 5]
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startNetnsCluster } from '../test/support/netns-cluster.js';
import { fastRules, startAlertmanager, startPrometheus } from '../test/support/prometheus.js';
import { median, option, startBenchDaemon, until, writerVipProbe } from './support.js';

const runs = Number(option('--runs', '5'));
const RULES = new URL('../alerts/switchyard.rules.yml', import.meta.url).pathname;
const results: number[] = [];
const lost: number[] = [];
for (let run = 1; run <= runs; run++) {
  const cluster = await startNetnsCluster(undefined, { triggers: { monitor: false, alertmanager: true, pipeline_timeout: '30s' } });
  const cleanups: Array<() => Promise<void>> = [];
  try {
    const daemon = await startBenchDaemon(cluster.config);
    cleanups.push(() => daemon.stop());
    const alertmanager = await startAlertmanager(undefined, { webhookUrl: `http://127.0.0.1:${cluster.listenPort}/api/v1/alerts`, credentialsFile: join(cluster.dir, 'token') });
    cleanups.push(() => alertmanager.stop());
    const prometheus = await startPrometheus(undefined, {
      targets: [`127.0.0.1:${cluster.listenPort}`],
      ruleFiles: [fastRules(readFileSync(RULES, 'utf8'), join(cluster.dir, 'fast.rules.yml'), { lagThresholdSeconds: 5 })],
      alertmanager: alertmanager.url,
    });
    cleanups.push(() => prometheus.stop());
    const probe = await writerVipProbe(cluster, daemon);
    await until('the alerting pipeline (watchdog) to be up', () => daemon.engine.pipelineUp(), 30_000, 100);
    probe.start();
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const killedAt = Date.now();
    await cluster.instance('db1').kill();
    const firstWrite = await until('a write through the VIP on the new writer', () => probe.firstAckAfter(killedAt), 90_000);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await probe.stop();
    const viaAlert = daemon.engine.pipelineUp();
    const connection = await cluster.instance('db2').rootConnection();
    const missing = await probe.missingAcked(connection);
    connection.destroy();
    results.push(firstWrite - killedAt);
    lost.push(missing.length);
    console.log(`run ${run}: first write on the new writer ${firstWrite - killedAt} ms after kill -9 (pipeline up, monitor trigger off: ${viaAlert}); ${probe.acked().length} acknowledged writes, ${missing.length} missing`);
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    await cluster.destroy();
  }
}
console.log('');
console.log('alert-driven failover (Prometheus scrape/eval 1 s, rules for 1-2 s, Alertmanager group_wait 0s, triggers.monitor false)');
console.log(`  time to first write on the new writer: median ${median(results)} ms, min ${Math.min(...results)}, max ${Math.max(...results)} (${results.length} runs)`);
console.log(`  acknowledged writes missing: ${lost.join(', ')} (asynchronous replication)`);

/** Issue 22 item 5: gtid_strict_mode=OFF on a cluster host is a warning (log, metric, config check --live). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HostObservation } from '../../src/domain/observation.js';
import { SwitchyardMetrics } from '../../src/exporter/metrics.js';
import { updateMetrics } from '../../src/exporter/update.js';
import { gtidStrictModeWarning } from '../../src/monitor/gtid-strict-mode.js';
import { clusterState } from './engine-fakes.js';

function observation(host: string, gtidStrictMode: boolean | undefined): HostObservation {
  return { host, at: 1, reachable: true, readOnly: true, gtidStrictMode, checks: {} };
}

test('gtid_strict_mode=OFF is a warning naming the host and the fix; ON or unread is not', () => {
  assert.match(
    gtidStrictModeWarning(observation('db2', false)) ?? '',
    /^db2 runs with gtid_strict_mode=OFF .*SET GLOBAL gtid_strict_mode=ON/,
  );
  assert.equal(gtidStrictModeWarning(observation('db2', true)), undefined);
  assert.equal(gtidStrictModeWarning(observation('db2', undefined)), undefined);
});

test('switchyard_gtid_strict_mode{host} follows the last cycle and is removed for an unreachable host', async () => {
  const metrics = new SwitchyardMetrics('test', { processMetrics: false });
  const state = clusterState({ db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' });
  const cycle = (observations: HostObservation[]) =>
    updateMetrics(metrics, {
      at: 1,
      observations,
      state,
      networkOk: true,
      networkDetail: '',
      transitions: [],
    });
  cycle([observation('db1', true), observation('db2', false), observation('db3', undefined)]);
  let body = (await metrics.render()).body;
  assert.match(body, /switchyard_gtid_strict_mode\{host="db1",cluster="test"\} 1/);
  assert.match(body, /switchyard_gtid_strict_mode\{host="db2",cluster="test"\} 0/);
  assert.doesNotMatch(body, /switchyard_gtid_strict_mode\{host="db3"/);
  cycle([{ host: 'db2', at: 2, reachable: false, checks: {} }]);
  body = (await metrics.render()).body;
  assert.doesNotMatch(body, /switchyard_gtid_strict_mode\{host="db2"/);
});

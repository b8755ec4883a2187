import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { readSecret } from '../../src/config/secrets.js';
import { MARIADB, requireBinaries } from '../support/binaries.js';
import { FAST_MONITOR, startDaemon, writeTestConfig } from '../support/daemon.js';
import { startSandbox, waitFor } from '../support/sandbox.js';

const run = promisify(execFile);
const CLI = new URL('../../bin/switchyard.js', import.meta.url).pathname;

function alert(
  name: string,
  labels: Record<string, string>,
  status: 'firing' | 'resolved' = 'firing',
  startsAt = '2026-11-25T03:00:00Z',
) {
  return {
    status,
    labels: { alertname: name, cluster: 'sandbox', ...labels },
    annotations: { summary: name },
    startsAt,
    endsAt: '0001-01-01T00:00:00Z',
    generatorURL: 'http://prometheus/graph',
    fingerprint: `${name}-${labels.host ?? ''}`,
  };
}
function payload(alerts: unknown[], status: 'firing' | 'resolved' = 'firing') {
  return {
    version: '4',
    groupKey: '{}:{alertname="x"}',
    truncatedAlerts: 0,
    status,
    receiver: 'switchyard',
    groupLabels: {},
    commonLabels: {},
    commonAnnotations: {},
    externalURL: 'http://alertmanager',
    alerts,
  };
}

test('webhook and control API on a real daemon: rejections change nothing, replays act once, live state is re-checked', async (t) => {
  if (!requireBinaries(t, MARIADB)) return;
  const sandbox = await startSandbox(t, { masters: 2, replicas: 1 });
  const config = writeTestConfig(sandbox, 'webhook.yml', (raw) => {
    raw.monitor = { ...FAST_MONITOR, max_lag: '1s' };
    raw.listen = `127.0.0.1:${sandbox.listenPort}`;
  });
  const token = readSecret({ file: config.auth.token_file }, 'token');
  const { daemon, url } = await startDaemon(t, config);
  const readerOf = () =>
    Object.entries(daemon.status().roles.reader ?? {})
      .filter(([, host]) => host === 'db3')
      .map(([ip]) => ip);
  await waitFor('db3 to hold a reader IP', async () => readerOf().length === 1, 20_000);
  const snapshot = async () => ({
    readOnly: await Promise.all(
      ['db1', 'db2', 'db3'].map(async (name) =>
        Number((await sandbox.instance(name).sql('SELECT @@read_only AS ro'))[0]?.ro),
      ),
    ),
    roles: JSON.stringify(daemon.status().roles),
  });
  const post = (body: string, headers: Record<string, string>) =>
    fetch(`${url}/api/v1/alerts`, { method: 'POST', body, headers });
  const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };

  const before = await snapshot();
  const journalBefore = daemon.journal.read().length;
  assert.equal(
    (await post(JSON.stringify(payload([])), { 'content-type': 'application/json' })).status,
    401,
    'no token',
  );
  assert.equal(
    (await post(JSON.stringify(payload([])), { ...auth, authorization: 'Bearer wrong' })).status,
    401,
    'bad token',
  );
  const malformed = await post(
    JSON.stringify({
      version: '4',
      status: 'firing',
      alerts: [{ status: 'firing', labels: {}, startsAt: 'yesterday' }],
    }),
    auth,
  );
  assert.equal(malformed.status, 400);
  assert.match(
    ((await malformed.json()) as { detail: string }).detail,
    /alerts\[0\]\.labels: labels\.alertname is required/,
  );
  assert.equal(
    (await post(JSON.stringify(payload([alert('X', { pad: 'x'.repeat(300_000) })])), auth)).status,
    413,
    'too large',
  );
  assert.equal(
    (await post('version=4', { ...auth, 'content-type': 'text/plain' })).status,
    415,
    'not JSON',
  );
  const unknown = await post(
    JSON.stringify(payload([alert('SomethingElse', { host: 'db2' })])),
    auth,
  );
  assert.equal(unknown.status, 200);
  const unknownBody = (await unknown.json()) as {
    decisions: Array<{ decision: string; reason: string }>;
  };
  assert.equal(unknownBody.decisions[0]?.decision, 'ignored');
  t.diagnostic(`unknown alert: ${unknownBody.decisions[0]?.reason}`);

  // Contradicted by live state: db3 is not lagging, so its reader role stays.
  const contradicted = await post(
    JSON.stringify(
      payload([alert('SwitchyardReplicationLagHigh', { host: 'db3', severity: 'warning' })]),
    ),
    auth,
  );
  const contradictedBody = (await contradicted.json()) as {
    decisions: Array<{ decision: string; reason: string }>;
  };
  assert.equal(
    contradictedBody.decisions[0]?.decision,
    'ignored',
    contradictedBody.decisions[0]?.reason,
  );
  t.diagnostic(`contradicted alert: ${contradictedBody.decisions[0]?.reason}`);
  await new Promise((resolve) => setTimeout(resolve, 700));
  assert.deepEqual(
    await snapshot(),
    before,
    'no rejected or ignored webhook changed any host or role',
  );
  assert.equal(
    daemon.journal.read().filter((entry) => entry.phase === 'before').length,
    daemon.journal
      .read()
      .slice(0, journalBefore)
      .filter((entry) => entry.phase === 'before').length,
    'no action was started',
  );

  // Real lag on db3: the alert drops its reader role, once; a replay is a duplicate; resolved restores it.
  await sandbox.instance('db3').sql('STOP SLAVE SQL_THREAD');
  await waitFor(
    'db3 to lag beyond max_lag',
    async () => (daemon.status().hosts.find((host) => host.name === 'db3')?.lagSeconds ?? 0) > 1.2,
    20_000,
  );
  const lagAlert = alert(
    'SwitchyardReplicationLagHigh',
    { host: 'db3', severity: 'warning' },
    'firing',
    '2026-11-25T03:05:00Z',
  );
  const acted = (await (await post(JSON.stringify(payload([lagAlert])), auth)).json()) as {
    decisions: Array<{ decision: string; reason: string }>;
  };
  t.diagnostic(`lag alert: ${acted.decisions[0]?.decision}: ${acted.decisions[0]?.reason}`);
  assert.equal(acted.decisions[0]?.decision, 'acted');
  assert.deepEqual(readerOf(), [], 'db3 lost its reader IP');
  const replay = (await (await post(JSON.stringify(payload([lagAlert])), auth)).json()) as {
    decisions: Array<{ decision: string; reason: string }>;
  };
  assert.equal(replay.decisions[0]?.decision, 'ignored');
  assert.match(replay.decisions[0]?.reason ?? '', /duplicate/);
  await sandbox.instance('db3').sql('START SLAVE SQL_THREAD');
  await waitFor(
    'db3 to catch up',
    async () => daemon.status().hosts.find((host) => host.name === 'db3')?.state === 'ONLINE',
    20_000,
  );
  const resolved = (await (
    await post(
      JSON.stringify(
        payload([{ ...lagAlert, status: 'resolved', endsAt: '2026-11-25T03:06:00Z' }], 'resolved'),
      ),
      auth,
    )
  ).json()) as {
    decisions: Array<{ decision: string; reason: string }>;
  };
  t.diagnostic(`resolved: ${resolved.decisions[0]?.decision}: ${resolved.decisions[0]?.reason}`);
  await waitFor('db3 to get a reader IP back', async () => readerOf().length === 1, 10_000);
  const metricsBody = await (await fetch(`${url}/metrics`)).text();
  for (const code of ['401', '400', '413', '415', '200'])
    assert.match(
      metricsBody,
      new RegExp(`switchyard_webhook_requests_total\\{code="${code}",cluster="sandbox"\\} \\d`),
      `counted ${code}`,
    );

  // The CLI over the control API: exit codes and messages.
  const cli = async (...args: string[]) => {
    try {
      const { stdout, stderr } = await run(process.execPath, [CLI, ...args, '-c', config.source]);
      return { code: 0, stdout, stderr };
    } catch (error) {
      const failure = error as { code: number; stdout: string; stderr: string };
      return { code: failure.code, stdout: failure.stdout, stderr: failure.stderr };
    }
  };
  const shown = await cli('show');
  assert.equal(shown.code, 0, shown.stderr);
  assert.match(shown.stdout, /db1 .*ONLINE.*OFF.*writer\(127\.0\.1\.100\)/s);
  assert.equal(
    (await cli('move-role', 'writer', 'db3')).code,
    1,
    'a replica cannot take the writer role: refused (exit 1)',
  );
  assert.equal(
    (await cli('move-role', 'writer', 'db9')).code,
    2,
    'unknown host: usage error (exit 2)',
  );
  assert.equal((await cli('mode', 'sideways')).code, 2);
  const mode = await cli('mode', 'passive');
  assert.equal(mode.code, 0, mode.stderr);
  assert.match((await cli('mode')).stdout, /^passive/);
  const journal = await cli('journal', '--since', '10m');
  assert.equal(journal.code, 0, journal.stderr);
  assert.match(journal.stdout, /mode/);
});

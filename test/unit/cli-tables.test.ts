import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HostStatus, StatusSnapshot } from '../../src/api/status-routes.js';
import { renderChecks, renderStatus } from '../../src/cli/commands/show.js';
import { useColour } from '../../src/cli/table.js';

const ESC = '\u001b[';

function host(name: string, state: string, extra: Partial<HostStatus> = {}): HostStatus {
  return {
    name,
    address: '127.0.0.1',
    port: 3306,
    state,
    reason: 'why',
    since: 0,
    up: true,
    readOnly: true,
    lagSeconds: 0.1,
    ioRunning: true,
    sqlRunning: true,
    roles: [],
    ...extra,
  };
}

const status: StatusSnapshot = {
  cluster: 'c1',
  mode: 'active',
  leader: 'single manager',
  networkOk: true,
  networkDetail: '',
  alertingPipelineUp: true,
  hosts: [
    host('db1', 'ONLINE', { readOnly: false, roles: [{ role: 'writer', ip: '10.0.0.100' }] }),
    host('db2', 'AWAITING_RECOVERY', { held: 'restarted' }),
    host('db3', 'HARD_OFFLINE', { up: false }),
  ],
  roles: { writer: { '10.0.0.100': 'db1' } },
  checks: {
    db1: { ping: { ok: true, ageMs: 300 }, replication: { ok: true, ageMs: 300 } },
    db3: { ping: { ok: false, ageMs: 1200, detail: 'ECONNREFUSED' } },
  },
  conditions: {},
  managerPathBroken: false,
};

/** Lines that are horizontal rules inside the table (not its top or bottom edge). */
function innerRules(text: string): string[] {
  return text.split('\n').filter((line) => line.startsWith('├'));
}

test('show: one rule under the header and none between rows; every host on its own line', () => {
  const text = renderStatus(status);
  assert.equal(innerRules(text).length, 1, text);
  const lines = text.split('\n');
  const header = lines.findIndex((line) => line.includes('│ host'));
  assert.ok(lines[header + 1]?.startsWith('├'), 'the rule follows the header');
  assert.deepEqual(
    lines.slice(header + 2, header + 5).map((line) => line.split('│')[1]?.trim()),
    ['db1', 'db2', 'db3'],
    'rows follow each other without rules',
  );
  assert.match(text, /AWAITING_RECOVERY \(held: restarted\)/);
});

test('checks: one rule under the header and none between rows', () => {
  const text = renderChecks(status.checks);
  assert.equal(innerRules(text).length, 1, text);
  assert.equal(text.split('\n').filter((line) => /│ db[13] /.test(line)).length, 3);
  assert.match(text, /FAIL .*ECONNREFUSED/);
});

test('tables: no escape codes without colour; with colour, states and check results are coloured and columns still line up', () => {
  assert.ok(!renderStatus(status).includes(ESC));
  assert.ok(!renderChecks(status.checks).includes(ESC));
  const coloured = renderStatus(status, true);
  assert.ok(coloured.includes(`${ESC}32mONLINE${ESC}39m`), coloured);
  assert.ok(coloured.includes(`${ESC}31mHARD_OFFLINE${ESC}39m`));
  assert.ok(coloured.includes(`${ESC}33mAWAITING_RECOVERY (held: restarted)${ESC}39m`));
  assert.ok(renderChecks(status.checks, true).includes(`${ESC}31mFAIL${ESC}39m`));
  const visibleWidths = coloured
    .split('\n')
    .filter((line) => line.startsWith('│'))
    // eslint-disable-next-line no-control-regex
    .map((line) => line.replace(/\u001b\[\d+m/g, '').length);
  assert.equal(new Set(visibleWidths).size, 1, 'escape codes do not shift the columns');
});

test('colour: only on a terminal, and never when NO_COLOR has any non-empty value', () => {
  assert.equal(useColour({ isTTY: true }, {}), true);
  assert.equal(useColour({ isTTY: false }, {}), false);
  assert.equal(useColour({}, {}), false, 'a pipe or a file has no isTTY');
  assert.equal(useColour({ isTTY: true }, { NO_COLOR: '1' }), false);
  assert.equal(
    useColour({ isTTY: true }, { NO_COLOR: 'false' }),
    false,
    'any non-empty value, even "false"',
  );
  assert.equal(
    useColour({ isTTY: true }, { NO_COLOR: '' }),
    true,
    'an empty NO_COLOR does not count',
  );
});

test('show marks a VIP the roles give a host that its agent does not hold, a stray VIP, and an agent that does not answer', () => {
  const text = renderStatus({
    ...status,
    hosts: [
      host('db1', 'ONLINE', {
        readOnly: false,
        roles: [{ role: 'writer', ip: '10.0.0.100' }],
        agent: { up: true, held: [] },
      }),
      host('db2', 'ONLINE', { agent: { up: true, held: ['10.0.0.100'] } }),
      host('db3', 'ONLINE', {
        roles: [{ role: 'reader', ip: '10.0.0.103' }],
        agent: { up: false, error: 'no answer within 1000 ms' },
      }),
    ],
  });
  assert.match(text, /writer\(10\.0\.0\.100\) NOT HELD/);
  assert.match(text, /db2: holds 10\.0\.0\.100 that its roles do not give it/);
  assert.match(text, /reader\(10\.0\.0\.103\) \?/);
  assert.match(text, /db3: agent not answering \(no answer within 1000 ms\): its VIPs are unknown/);
});

test('show gives the route state each HAProxy reported: routed servers, mismatches, an unreachable one', () => {
  const text = renderStatus({
    ...status,
    routes: [
      {
        proxy: 'app1',
        at: 1,
        reachable: true,
        servers: [
          { backend: 'mysql_writer', server: 'db1', admin: 'ready', up: true, checked: true },
          { backend: 'mysql_writer', server: 'db2', admin: 'ready', up: false, checked: true },
        ],
        mismatches: [],
      },
      {
        proxy: 'app2',
        at: 1,
        reachable: true,
        servers: [
          { backend: 'mysql_writer', server: 'db1', admin: 'maint', up: true, checked: false },
          { backend: 'mysql_writer', server: 'db2', admin: 'ready', up: true, checked: false },
        ],
        mismatches: ['mysql_writer/db1 is maint, wanted ready'],
      },
      {
        proxy: 'app3',
        at: 1,
        reachable: false,
        error: 'connect ECONNREFUSED',
        servers: [],
        mismatches: [],
      },
    ],
  });
  assert.match(
    text,
    /haproxy app1 mysql_writer: db1 ROUTED \(ready, check up\), db2 - \(ready, check down\)/,
  );
  assert.match(text, /haproxy app2 mysql_writer: db1 - \(maint\), db2 ROUTED \(ready\)/);
  assert.match(text, /haproxy app2: MISMATCH mysql_writer\/db1 is maint, wanted ready/);
  assert.match(text, /haproxy app3: UNREACHABLE \(connect ECONNREFUSED\)/);
  assert.doesNotMatch(renderStatus(status), /haproxy/, 'nothing without routing');
});

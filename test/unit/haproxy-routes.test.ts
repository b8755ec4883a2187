/**
 * HAProxy through its runtime API: the answer parser, the socket client (a fake unix socket), and
 * the driver that declares the roles every cycle and inside a failover (an in-memory HAProxy that
 * understands the three commands Switchyard sends).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import * as yaml from 'js-yaml';
import { readFileSync } from 'node:fs';
import { validateConfig } from '../../src/config/load.js';
import { formatProblem } from '../../src/config/problems.js';
import type { HaproxyConfig, RoleConfig } from '../../src/config/schema.js';
import { SwitchyardMetrics } from '../../src/exporter/metrics.js';
import { MemoryJournal } from '../../src/journal/journal.js';
import { silentLogger } from '../../src/log.js';
import {
  parseServersState,
  readBackend,
  RuntimeApiClient,
  setServerState,
  type RuntimeApi,
} from '../../src/routing/haproxy-runtime.js';
import { HaproxyRoutes, wantedServers } from '../../src/routing/haproxy-routes.js';
import { clusterState, harness, testConfig } from './engine-fakes.js';

/** Captured from Debian's HAProxy 2.6 (`show servers state w`): db2 in maint, db3 drain, db4 "disabled" in the file, db5 too but set ready since. */
const SHOW_SERVERS_STATE = `1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port
2 w 1 db1 127.0.0.1 2 0 1 1 1 1 0 2 0 0 0 0 - 3306 - 0 0 - - 0
2 w 2 db2 127.0.0.1 0 1 1 1 1 1 0 2 0 0 0 0 - 3307 - 0 0 - - 0
2 w 3 db3 127.0.0.1 2 8 1 1 1 1 0 2 0 0 0 0 - 3308 - 0 0 - - 0
2 w 4 db4 127.0.0.1 0 5 1 1 1 1 0 2 0 0 0 0 - 3309 - 0 0 - - 0
2 w 5 db5 127.0.0.1 2 4 1 1 1 1 0 2 0 0 0 0 - 3310 - 0 0 - - 0

`;

test('show servers state: columns found by name, admin bits read as ready, maint, drain', () => {
  assert.deepEqual(parseServersState(SHOW_SERVERS_STATE), [
    { backend: 'w', server: 'db1', admin: 'ready', up: true, checked: false },
    { backend: 'w', server: 'db2', admin: 'maint', up: false, checked: false },
    { backend: 'w', server: 'db3', admin: 'drain', up: true, checked: false },
    // "disabled" in the file (CMAINT + FMAINT), then after `set server w/db5 state ready` (CMAINT alone).
    { backend: 'w', server: 'db4', admin: 'maint', up: false, checked: false },
    { backend: 'w', server: 'db5', admin: 'ready', up: true, checked: false },
  ]);
  assert.throws(() => parseServersState("Can't find backend.\n\n"), /Can't find backend/);
});

/** An HAProxy in memory: backends of servers, and every command line it was sent. */
class FakeHaproxy implements RuntimeApi {
  readonly commands: string[] = [];
  /** While set, every command waits this long before it is answered (a hung HAProxy). */
  hangMs = 0;
  down = false;
  readonly servers = new Map<string, Map<string, 'ready' | 'maint' | 'drain'>>();
  readonly shutdowns: string[] = [];
  /** With `checked`: each server's health (HAProxy's check, or forced), by backend/server. */
  readonly health = new Map<string, boolean>();

  constructor(
    backends: Record<string, string[]>,
    private readonly checked = false,
  ) {
    for (const [backend, servers] of Object.entries(backends)) {
      this.servers.set(backend, new Map(servers.map((server) => [server, 'ready'])));
      for (const server of servers) this.health.set(`${backend}/${server}`, true);
    }
  }

  async run(line: string): Promise<string> {
    this.commands.push(line);
    if (this.down) throw new Error('connect ECONNREFUSED');
    if (this.hangMs) await new Promise((resolve) => setTimeout(resolve, this.hangMs));
    return line
      .split(';')
      .map((command) => this.one(command.trim()))
      .join('');
  }

  private one(command: string): string {
    let match = /^show servers state (\S+)$/.exec(command);
    if (match) {
      const servers = this.servers.get(match[1] as string);
      if (!servers) return "Can't find backend.\n\n";
      const rows = [...servers].map(
        ([server, admin], index) =>
          `2 ${match?.[1]} ${index + 1} ${server} 10.0.0.${index + 1} ${this.up(`${match?.[1]}/${server}`, admin) ? 2 : 0} ${admin === 'maint' ? 1 : admin === 'drain' ? 8 : 0} 1 1 0 6 3 4 ${this.checked ? (admin === 'maint' ? 14 : 6) : 0} 0 0 0 - 3306 - 0 0 - - 0`,
      );
      return `1\n${SHOW_SERVERS_STATE.split('\n')[1]}\n${rows.join('\n')}\n\n`;
    }
    match = /^set server (\S+)\/(\S+) state (ready|maint|drain)$/.exec(command);
    if (match) {
      const servers = this.servers.get(match[1] as string);
      if (!servers?.has(match[2] as string)) return 'No such server.\n\n';
      // As HAProxy 2.6 does: a checked server leaving maint is up at once, before any check.
      if (servers.get(match[2] as string) === 'maint' && match[3] !== 'maint')
        this.health.set(`${match[1]}/${match[2]}`, true);
      servers.set(match[2] as string, match[3] as 'ready' | 'maint' | 'drain');
      this.routableLog.push(this.routable());
      return '';
    }
    match = /^set server (\S+)\/(\S+) health (up|down)$/.exec(command);
    if (match) {
      if (!this.checked) return 'Unknown command.\n\n';
      this.health.set(`${match[1]}/${match[2]}`, match[3] === 'up');
      this.routableLog.push(this.routable());
      return '';
    }
    match = /^shutdown sessions server (\S+)\/(\S+)$/.exec(command);
    if (match) {
      this.shutdowns.push(`${match[1]}/${match[2]}`);
      return '';
    }
    return 'Unknown command.\n\n';
  }

  state(backend: string): Record<string, string> {
    return Object.fromEntries(this.servers.get(backend) ?? []);
  }

  /** The writer backend's routable servers after each command that changed a state. */
  readonly routableLog: string[][] = [];

  private up(server: string, admin: string): boolean {
    return this.checked ? admin !== 'maint' && this.health.get(server) === true : true;
  }

  /** Servers of the writer backend a new connection could go to. */
  routable(backend = 'mysql_writer'): string[] {
    return [...(this.servers.get(backend) ?? [])]
      .filter(([server, admin]) => admin === 'ready' && this.up(`${backend}/${server}`, admin))
      .map(([server]) => server);
  }
}

const ROLES: Record<string, RoleConfig> = {
  writer: { exclusive: true, hosts: ['db1', 'db2'], ips: [], prefer: 'db1' } as RoleConfig,
  reader: { exclusive: false, hosts: ['db1', 'db2', 'db3'], ips: [] } as unknown as RoleConfig,
};
const HOSTS = ['db1', 'db2', 'db3'];
const BACKENDS = { writer: 'mysql_writer', reader: 'mysql_readers' };
const HAPROXY: HaproxyConfig = [
  { name: 'app1', address: '/run/haproxy/admin.sock', backends: BACKENDS, timeout: 200 },
  { name: 'app2', address: '10.0.0.21:9999', backends: BACKENDS, timeout: 200 },
];

function routes(proxies: Record<string, FakeHaproxy>) {
  const journal = new MemoryJournal();
  const metrics = new SwitchyardMetrics('test', { processMetrics: false });
  const driver = new HaproxyRoutes({
    config: HAPROXY,
    roles: ROLES,
    hosts: HOSTS,
    writerRole: 'writer',
    journal,
    log: silentLogger,
    metrics,
    api: (instance) => proxies[instance.name] as FakeHaproxy,
  });
  return { driver, journal, metrics };
}

const fakeProxy = () =>
  new FakeHaproxy({ mysql_writer: ['db1', 'db2'], mysql_readers: ['db1', 'db2', 'db3'] });

function withWriter(writer: string | null) {
  const state = clusterState({ db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' });
  state.roles = { writer: { '-': writer } };
  return state;
}

async function metricValue(
  metrics: SwitchyardMetrics,
  name: string,
  labels: Record<string, string>,
): Promise<number | undefined> {
  const metric = (await metrics.registry.getMetricsAsJSON()).find((item) => item.name === name);
  return (metric?.values as Array<{ value: number; labels: Record<string, string> }>)?.find(
    (value) => Object.entries(labels).every(([key, wanted]) => value.labels[key] === wanted),
  )?.value;
}

test('wanted: the writer ready in the writer backend and every other server maint; readers by role', () => {
  const wanted = wantedServers({
    backends: BACKENDS,
    roles: ROLES,
    hosts: HOSTS,
    writerRole: 'writer',
    state: withWriter('db2'),
  });
  const of = (backend: string) =>
    Object.fromEntries(
      wanted.filter((item) => item.backend === backend).map((item) => [item.server, item.state]),
    );
  assert.deepEqual(of('mysql_writer'), { db1: 'maint', db2: 'ready', db3: 'maint' });
  assert.deepEqual(of('mysql_readers'), { db1: 'ready', db2: 'ready', db3: 'ready' });
  const none = wantedServers({
    backends: BACKENDS,
    roles: ROLES,
    hosts: HOSTS,
    writerRole: 'writer',
    state: withWriter(null),
  });
  assert.ok(
    none.filter((item) => item.backend === 'mysql_writer').every((item) => item.state === 'maint'),
    'no writer: no server of the writer backend is ready',
  );
});

test('follow: maint with sessions shut down first, then ready; journalled, read back, metrics', async () => {
  const app1 = fakeProxy();
  const app2 = fakeProxy();
  const { driver, journal, metrics } = routes({ app1, app2 });
  const rounds = await driver.follow(() => withWriter('db2'), 'failover of writer from db1 to db2');
  assert.deepEqual(
    rounds.map((round) => [round.proxy, round.reachable, round.mismatches]),
    [
      ['app1', true, []],
      ['app2', true, []],
    ],
  );
  for (const proxy of [app1, app2]) {
    assert.deepEqual(proxy.state('mysql_writer'), { db1: 'maint', db2: 'ready' });
    const sets = proxy.commands.filter((line) => line.startsWith('set server'));
    assert.deepEqual(sets, [
      'set server mysql_writer/db1 state maint; shutdown sessions server mysql_writer/db1',
    ]);
    assert.deepEqual(proxy.shutdowns, ['mysql_writer/db1']);
  }
  // db2 was ready already (HAProxy's default): only db1 changed. Now move back: db2 leaves first.
  await driver.follow(() => withWriter('db1'), 'switchover');
  const sets = app1.commands.filter((line) => line.startsWith('set server')).slice(1);
  assert.deepEqual(sets, [
    'set server mysql_writer/db2 state maint; shutdown sessions server mysql_writer/db2',
    'set server mysql_writer/db1 state ready',
  ]);
  const pushes = journal.entries.filter((entry) => entry.event === 'route.push');
  assert.equal(pushes.length, 2 * (2 + 4), 'before and after of every push at both proxies');
  assert.ok(pushes.every((entry) => entry.phase === 'before' || entry.outcome === 'ok'));
  assert.match(pushes[0]?.reason ?? '', /app1: mysql_writer\/db1 -> maint \(sessions shut down\)/);
  assert.equal(
    await metricValue(metrics, 'switchyard_route_state', {
      proxy: 'app2',
      backend: 'mysql_writer',
      host: 'db1',
      state: 'ready',
    }),
    1,
  );
  assert.equal(await metricValue(metrics, 'switchyard_route_mismatch', { proxy: 'app1' }), 0);
  assert.equal(
    await metricValue(metrics, 'switchyard_route_pushes_total', { proxy: 'app1', result: 'ok' }),
    3,
  );
});

test('an unreachable HAProxy: journalled once per outage, proxy_up 0; a hung one never holds follow past its bound', async () => {
  const app1 = fakeProxy();
  const app2 = fakeProxy();
  app2.down = true;
  const { driver, journal, metrics } = routes({ app1, app2 });
  driver.converge(() => withWriter('db1'));
  await new Promise((resolve) => setTimeout(resolve, 20));
  driver.converge(() => withWriter('db1'));
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(journal.entries.filter((entry) => entry.event === 'route.unreachable').length, 1);
  assert.equal(await metricValue(metrics, 'switchyard_route_proxy_up', { proxy: 'app2' }), 0);
  assert.equal(await metricValue(metrics, 'switchyard_route_proxy_up', { proxy: 'app1' }), 1);
  assert.deepEqual(app1.state('mysql_writer'), { db1: 'ready', db2: 'maint' });

  app2.down = false;
  app2.hangMs = 5000;
  const started = Date.now();
  const rounds = await driver.follow(() => withWriter('db2'), 'failover of writer from db1 to db2');
  const took = Date.now() - started;
  assert.ok(took < 1000, `follow waited ${took} ms for a hung HAProxy (bound: 2 x 200 ms)`);
  assert.deepEqual(app1.state('mysql_writer'), { db1: 'maint', db2: 'ready' });
  assert.equal(rounds.find((round) => round.proxy === 'app2')?.reachable, false);
  assert.ok(
    journal.entries.some(
      (entry) =>
        entry.event === 'route.unreachable' &&
        /app2 .*during: failover of writer from db1 to db2/.test(entry.reason ?? ''),
    ),
  );
});

test('a server changed behind Switchyard is set back at the next cycle', async () => {
  const app1 = fakeProxy();
  const { driver } = routes({ app1, app2: fakeProxy() });
  await driver.follow(() => withWriter('db1'), 'start');
  await app1.run('set server mysql_writer/db2 state ready');
  driver.converge(() => withWriter('db1'));
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(app1.state('mysql_writer'), { db1: 'ready', db2: 'maint' });
});

test('servers HAProxy checks itself are routed by health, never left in maint: a new writer is still picked up by the check when the manager cannot reach that HAProxy', async () => {
  const app1 = new FakeHaproxy({ mysql_writer: ['db1', 'db2'], mysql_readers: ['db1'] }, true);
  // As the file starts them: disabled (maint), with `check`.
  app1.servers.get('mysql_writer')?.set('db1', 'maint');
  app1.servers.get('mysql_writer')?.set('db2', 'maint');
  const { driver, journal } = routes({ app1, app2: fakeProxy() });
  await driver.follow(() => withWriter('db1'), 'start');
  // db2 leaves maint through drain with its health down first: never routable on the way.
  assert.deepEqual(app1.state('mysql_writer'), { db1: 'ready', db2: 'ready' });
  assert.deepEqual(app1.routable(), ['db1']);
  assert.ok(
    app1.routableLog.every((servers) => servers.length <= 1),
    'never two routable',
  );
  assert.ok(
    app1.commands.includes(
      'set server mysql_writer/db2 state drain; set server mysql_writer/db2 health down; set server mysql_writer/db2 state ready; shutdown sessions server mysql_writer/db2',
    ),
  );
  const push = journal
    .read()
    .find(
      (entry) => entry.event === 'route.push' && entry.host === 'db2' && entry.phase === 'before',
    );
  assert.equal(push?.inputs?.via, 'health');

  // A failover to db2: db1 down and its sessions shut, then db2 forced up at once.
  app1.routableLog.length = 0;
  await driver.follow(() => withWriter('db2'), 'failover of writer from db1 to db2');
  assert.deepEqual(app1.routable(), ['db2']);
  assert.ok(
    app1.routableLog.every((servers) => servers.length <= 1),
    'never two routable',
  );
  assert.ok(app1.shutdowns.includes('mysql_writer/db1'));

  // The manager loses this HAProxy: its own check (the agents' answers) moves the writer back,
  // which it could not if db1 had been left in maint.
  app1.health.set('mysql_writer/db2', false);
  app1.health.set('mysql_writer/db1', true);
  assert.deepEqual(app1.routable(), ['db1']);

  // Between decisions the check has the last word on the holder; a routable non-holder is taken out.
  driver.converge(() => withWriter('db1'));
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(app1.routable(), ['db1']);
  app1.health.set('mysql_writer/db2', true);
  const before = app1.commands.length;
  driver.converge(() => withWriter('db1'));
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(app1.routable(), ['db1']);
  assert.ok(
    app1.commands
      .slice(before)
      .includes(
        'set server mysql_writer/db2 health down; shutdown sessions server mysql_writer/db2',
      ),
  );
  // What `switchyard show` prints: the last round's reading per instance.
  const [report] = driver.report();
  assert.equal(report?.reachable, true);
  assert.deepEqual(
    report?.servers
      .filter((server) => server.backend === 'mysql_writer')
      .map((server) => [server.server, server.admin, server.up, server.checked]),
    [
      ['db1', 'ready', true, true],
      ['db2', 'ready', false, true],
    ],
  );
});

/** A unix socket that answers like HAProxy's runtime API, or never answers. */
async function fakeSocket(
  t: TestContext,
  answer: (line: string) => string | undefined,
): Promise<{ path: string; received: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'haproxy-fake-'));
  const path = join(dir, 'admin.sock');
  const received: string[] = [];
  const server: Server = createServer((socket) => {
    let buffer = '';
    socket.on('data', (chunk) => {
      buffer += String(chunk);
      if (!buffer.endsWith('\n')) return;
      received.push(buffer);
      const reply = answer(buffer.trimEnd());
      if (reply !== undefined) socket.end(reply);
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  t.after(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { path, received };
}

test('runtime API client: one command line per connection, the answer until HAProxy closes; bounded', async (t) => {
  const { path, received } = await fakeSocket(t, (line) =>
    line.startsWith('show servers state')
      ? SHOW_SERVERS_STATE
      : line.includes('hang')
        ? undefined
        : '',
  );
  const client = new RuntimeApiClient(path, 300);
  assert.deepEqual(
    (await readBackend(client, 'w')).map((server) => `${server.server}:${server.admin}`),
    ['db1:ready', 'db2:maint', 'db3:drain', 'db4:maint', 'db5:ready'],
  );
  await setServerState(client, 'w', 'db1', 'maint');
  assert.deepEqual(received, [
    'show servers state w\n',
    'set server w/db1 state maint; shutdown sessions server w/db1\n',
  ]);
  const started = Date.now();
  await assert.rejects(client.run('hang'), /no answer from .* within 300 ms/);
  assert.ok(Date.now() - started < 1500);
  await assert.rejects(
    setServerState(client, 'w', 'db1; shutdown frontend x', 'ready'),
    /cannot be sent to HAProxy/,
  );
  const refusing = await fakeSocket(t, () => 'No such server.\n\n');
  await assert.rejects(
    setServerState(new RuntimeApiClient(refusing.path, 300), 'w', 'db9', 'ready'),
    /HAProxy refused "set server w\/db9 state ready": No such server\./,
  );
  await assert.rejects(new RuntimeApiClient('127.0.0.1:1', 300).run('show info'), /127\.0\.0\.1:1/);
});

test('engine: the failover pushes the routes once, after the fence and the promotion', async () => {
  const followed: string[] = [];
  const config = testConfig({
    roles: {
      writer: { exclusive: true, hosts: ['db1', 'db2'], prefer: 'db1' },
      reader: { hosts: ['db1', 'db2', 'db3'] },
    },
  });
  const h: ReturnType<typeof harness> = harness({
    config,
    routes: {
      converge: () => undefined,
      follow: async (state, reason) => {
        followed.push(
          `${reason} | writable: ${h.sim.writable().join(',')} | holder: ${state().roles.writer?.['-']}`,
        );
        return [];
      },
    },
  });
  await h.cycle({ db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' });
  h.sim.killHost('db1');
  await h.cycle({ db1: 'HARD_OFFLINE', db2: 'REPLICATION_FAIL', db3: 'REPLICATION_FAIL' });
  assert.deepEqual(followed, ['failover of writer from db1 to db2 | writable: db2 | holder: db2']);
});

test('config: routing.haproxy keys validated with their paths', () => {
  const raw = yaml.load(
    readFileSync(new URL('../fixtures/valid.yml', import.meta.url), 'utf8'),
  ) as Record<string, any>;
  raw.routing = {
    haproxy: [
      { socket: '/run/haproxy/admin.sock', backends: BACKENDS },
      { name: 'app2', address: '10.0.0.21:9999', backends: { writer: 'w' }, timeout: '500ms' },
    ],
  };
  const { config, problems } = validateConfig(raw);
  assert.deepEqual(problems, []);
  assert.deepEqual(config?.routing?.haproxy, [
    {
      name: '/run/haproxy/admin.sock',
      address: '/run/haproxy/admin.sock',
      backends: BACKENDS,
      timeout: 1000,
    },
    { name: 'app2', address: '10.0.0.21:9999', backends: { writer: 'w' }, timeout: 500 },
  ]);
  raw.routing = {
    haproxy: [
      { name: 'app1', socket: 'run/admin.sock', backends: BACKENDS },
      { name: 'app1', address: '10.0.0.21:9999', timeout: '1h', backends: BACKENDS },
      { address: '10.0.0.22:9999', socket: '/run/a.sock', backends: BACKENDS },
      { address: '10.0.0.23:9999', backends: { writer: 'mysql writer', nosuchrole: 'x' }, port: 1 },
    ],
  };
  const bad = validateConfig(raw).problems.map(formatProblem);
  for (const path of [
    'routing.haproxy[0].socket',
    'routing.haproxy[1].name',
    'routing.haproxy[1].timeout',
    'routing.haproxy[2]',
    'routing.haproxy[3].backends.writer',
    'routing.haproxy[3].backends.nosuchrole',
    'routing.haproxy[3]',
  ])
    assert.ok(
      bad.some((line) => line.startsWith(path)),
      `${path} in ${bad.join('\n')}`,
    );
  raw.routing = { haproxy: [] };
  const empty = validateConfig(raw).problems.map(formatProblem);
  assert.ok(
    empty.some((line) => /routing\.haproxy.*at least one/.test(line)),
    empty.join('\n'),
  );
});

test('engine: a slow router does not delay the writer VIP; the failover waits for it after', async () => {
  const h: ReturnType<typeof harness> = harness({
    routes: {
      converge: () => undefined,
      follow: async () => {
        const callsAtStart = h.sim.calls.length;
        await new Promise((resolve) => setTimeout(resolve, 300));
        vipAddedMeanwhile = h.sim.calls
          .slice(callsAtStart)
          .some((call) => /addVip.*db2.*127\.0\.1\.100|db2.*addVip/.test(call));
        return [];
      },
    },
  });
  let vipAddedMeanwhile = false;
  await h.cycle({ db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' });
  h.sim.killHost('db1');
  await h.cycle({ db1: 'HARD_OFFLINE', db2: 'REPLICATION_FAIL', db3: 'REPLICATION_FAIL' });
  assert.ok(h.sim.host('db2').vips.has('127.0.1.100'));
  assert.ok(
    vipAddedMeanwhile,
    `the VIP was added while the router was slow: ${h.sim.calls.join(' ')}`,
  );
});

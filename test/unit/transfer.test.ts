import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import { validateAgentConfig } from '../../src/agent/config.js';
import { binlogWindow } from '../../src/transfer/rejoin.js';
import { Reseeder, ReseedRefused } from '../../src/transfer/reseed.js';
import { ByteCounter, parseByteRate, Throttle } from '../../src/transfer/stream-tools.js';
import type { LoadedConfig } from '../../src/config/load.js';

test('rate limits parse with binary suffixes and refuse nonsense', () => {
  assert.equal(parseByteRate('50M'), 50 * 1024 * 1024);
  assert.equal(parseByteRate('256K'), 256 * 1024);
  assert.equal(parseByteRate('1.5G'), Math.floor(1.5 * 1024 ** 3));
  assert.equal(parseByteRate('2048'), 2048);
  assert.throws(() => parseByteRate('fast'), /not a rate/);
  assert.throws(() => parseByteRate('10'), /below 1 KiB/);
});

test('an errant range becomes an exclusive start and inclusive stop for mariadb-binlog', () => {
  assert.deepEqual(binlogWindow('0-1-6'), {
    domain: 0,
    server: 1,
    first: 6n,
    last: 6n,
    start: '0-1-5',
    stop: '0-1-6',
  });
  assert.deepEqual(binlogWindow('2-11-101..103'), {
    domain: 2,
    server: 11,
    first: 101n,
    last: 103n,
    start: '2-11-100',
    stop: '2-11-103',
  });
  assert.throws(() => binlogWindow('0-1'), /not a GTID range/);
});

test('the throttle holds a stream to its rate', async () => {
  const chunks = Array.from({ length: 8 }, () => Buffer.alloc(16 * 1024));
  const counter = new ByteCounter();
  const started = Date.now();
  await pipeline(
    Readable.from(chunks),
    new Throttle(256 * 1024),
    counter,
    async function* (source) {
      for await (const _chunk of source) yield* [];
    },
  );
  const seconds = (Date.now() - started) / 1000;
  assert.equal(counter.bytes, 128 * 1024);
  // 128 KiB at 256 KiB/s cannot take less than about half a second.
  assert.ok(seconds >= 0.45, `took ${seconds} s`);
});

test('agent transfer keys are validated with their key paths', () => {
  const base = { listen: '127.0.0.1:9106', auth: { token_file: '/t' } };
  const ok = validateAgentConfig(
    {
      ...base,
      snapshot: {
        method: 'mariabackup',
        path: '/var/lib/mysql',
        service: {
          stop: ['systemctl', 'stop', 'mariadb'],
          start: ['systemctl', 'start', 'mariadb'],
        },
        replication: { user: 'repl', password_file: 'repl.pass' },
      },
      mysql: { socket: '/run/mysqld/mysqld.sock', user: 'switchyard', password_file: 'mysql.pass' },
    },
    '/etc/switchyard/agent.yml',
  );
  assert.deepEqual(ok.problems, []);
  assert.deepEqual(ok.config?.snapshot?.replication, { user: 'repl', password_file: 'repl.pass' });
  const bad = validateAgentConfig(
    {
      ...base,
      snapshot: {
        method: 'mariabackup',
        path: '/var/lib/mysql',
        service: { stop: 'systemctl stop mariadb', start: [] },
        replication: { user: 'repl' },
      },
    },
    '/etc/switchyard/agent.yml',
  );
  const paths = bad.problems.map((problem) => problem.path);
  for (const path of [
    'snapshot.service.stop',
    'snapshot.service.start',
    'snapshot.replication.password_file',
  ])
    assert.ok(paths.includes(path), `${path} in ${paths.join(', ')}`);
});

test('the manager refuses the writer, a host in service, unknown hosts and hosts without an agent before anything moves', () => {
  const host = (agent?: string) => ({
    address: '10.0.0.1',
    port: 3306,
    ...(agent ? { agent } : {}),
  });
  const config = {
    hosts: {
      db1: host('http://a:1'),
      db2: host('http://b:1'),
      db3: host('http://c:1'),
      db4: host(),
    },
    actuator: {},
  } as unknown as LoadedConfig;
  const reseeder = new Reseeder(config);
  const states = { db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE', db4: 'ADMIN_OFFLINE' };
  const check =
    (from: string, to: string, extra: Record<string, string> = {}) =>
    () =>
      reseeder.check({
        operation: 'clone',
        from,
        to,
        writer: 'db1',
        states: { ...states, ...extra },
      });
  assert.throws(
    check('db2', 'db1', { db1: 'ADMIN_OFFLINE' }),
    (error: Error) => error instanceof ReseedRefused && /db1 is the writer/.test(error.message),
  );
  assert.throws(
    check('db2', 'db3'),
    /db3 is ONLINE; only a host in ADMIN_OFFLINE or AWAITING_RECOVERY/,
  );
  assert.throws(check('db2', 'db9'), /unknown host "db9"/);
  assert.throws(check('db2', 'db4'), /db4 has no agent URL \(hosts.db4.agent\)/);
  assert.throws(check('db3', 'db3', { db3: 'ADMIN_OFFLINE' }), /same host/);
  assert.doesNotThrow(check('db2', 'db3', { db3: 'AWAITING_RECOVERY' }));
});

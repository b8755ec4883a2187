import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { gzipSync } from 'node:zlib';
import { silentLogger } from '../../src/log.js';
import {
  TransferRefused,
  TransferTarget,
  type TransferStatus,
} from '../../src/agent/transfer/target.js';

/**
 * The target agent's receive/swap/rollback logic against a fake source (an HTTP server sending a
 * gzipped tar) and a fake server whose "running" is a flag file; the service commands are node
 * one-liners run as argument arrays, like the real ones.
 */
const STOP = "require('fs').rmSync(process.argv[1], { force: true })";
const START =
  "const fs = require('fs'); const [flag, data] = process.argv.slice(1); if (fs.existsSync(data + '/bad')) { console.error('will not start'); process.exit(3); } fs.writeFileSync(flag, '')";

interface Fixture {
  dir: string;
  datadir: string;
  flag: string;
  target: TransferTarget;
  repointed: string[];
  url: string;
}

async function fixture(
  t: TestContext,
  sourceFiles: Record<string, string>,
  options: { running: boolean; cut?: boolean },
): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), 'sy-target-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const datadir = join(dir, 'data');
  mkdirSync(datadir);
  writeFileSync(join(datadir, 'old.txt'), 'old');
  const flag = join(dir, 'running');
  if (options.running) writeFileSync(flag, '');
  const source = join(dir, 'source');
  mkdirSync(source);
  for (const [name, text] of Object.entries(sourceFiles)) writeFileSync(join(source, name), text);
  const body = gzipSync(execFileSync('tar', ['-C', source, '-cf', '-', '.']));
  const server: Server = createServer((_request, response) => {
    response.writeHead(200, {
      'x-switchyard-format': 'tar',
      'x-switchyard-gtid': '0-1-5',
      'content-type': 'application/octet-stream',
    });
    if (options.cut) {
      response.write(body.subarray(0, Math.floor(body.length / 2)));
      setTimeout(() => response.destroy(), 50);
    } else response.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const repointed: string[] = [];
  const target = new TransferTarget({
    datadir,
    server: {},
    service: {
      stop: [process.execPath, '-e', STOP, flag],
      start: [process.execPath, '-e', START, flag, datadir],
    },
    replication: { user: 'repl', password: () => 'x' },
    log: silentLogger,
    serviceTimeoutMs: 5000,
    probe: async () => (existsSync(flag) ? 1 : undefined),
    repoint: async (writer, gtid) => {
      repointed.push(`${writer.host}:${writer.port}@${gtid}`);
    },
  });
  return {
    dir,
    datadir,
    flag,
    target,
    repointed,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
  };
}

async function receive(f: Fixture, id: string, estimatedBytes = 1000): Promise<TransferStatus> {
  await f.target.receive({
    id,
    operation: 'clone',
    source: { url: f.url, token: 'x'.repeat(32) },
    estimatedBytes,
    writer: { host: '10.0.0.1', port: 3306 },
  });
  for (;;) {
    const status = f.target.status(id);
    if (status && (status.phase === 'done' || status.phase === 'failed')) return status;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const leftovers = (f: Fixture) => readdirSync(f.dir).filter((name) => name.startsWith('data.'));

test('a complete copy is swapped in, started and pointed at the writer; the old datadir is removed', async (t) => {
  const f = await fixture(t, { 'new.txt': 'new', 'master.info': 'foreign' }, { running: true });
  const status = await receive(f, 't1');
  assert.equal(status.phase, 'done', status.error);
  assert.equal(status.outcome, 'running-new');
  assert.ok(existsSync(join(f.datadir, 'new.txt')) && !existsSync(join(f.datadir, 'old.txt')));
  assert.ok(
    !existsSync(join(f.datadir, 'master.info')),
    "the source's replication state does not travel",
  );
  assert.deepEqual(f.repointed, ['10.0.0.1:3306@0-1-5']);
  assert.ok(existsSync(f.flag), 'running');
  assert.deepEqual(leftovers(f), []);
});

test('a copy that does not start: the old datadir is put back and the server restarted on it, and the status says so', async (t) => {
  const f = await fixture(t, { 'new.txt': 'new', bad: '' }, { running: true });
  const status = await receive(f, 't2');
  assert.equal(status.phase, 'failed');
  assert.match(status.error ?? '', /^starting: .*will not start/);
  assert.equal(status.outcome, 'restarted-old');
  assert.match(status.detail ?? '', /RESTARTED on its old datadir/);
  assert.ok(existsSync(join(f.datadir, 'old.txt')) && !existsSync(join(f.datadir, 'new.txt')));
  assert.ok(existsSync(f.flag), 'running again');
  assert.deepEqual(f.repointed, []);
  assert.deepEqual(leftovers(f), []);
});

test('a server that was stopped stays stopped on its old datadir when the copy fails after the swap', async (t) => {
  const f = await fixture(t, { 'new.txt': 'new', bad: '' }, { running: false });
  const status = await receive(f, 't3');
  assert.equal(status.outcome, 'stopped-old');
  assert.match(status.detail ?? '', /left STOPPED on its old datadir/);
  assert.ok(existsSync(join(f.datadir, 'old.txt')));
  assert.ok(!existsSync(f.flag), 'still stopped');
});

test('a stream cut midway changes nothing: the server keeps running on its old datadir', async (t) => {
  const f = await fixture(t, { 'new.txt': 'x'.repeat(200_000) }, { running: true, cut: true });
  const status = await receive(f, 't4');
  assert.equal(status.phase, 'failed');
  assert.match(status.error ?? '', /^receiving: the stream from the source was cut/);
  assert.equal(status.outcome, 'untouched-running');
  assert.ok(existsSync(join(f.datadir, 'old.txt')) && existsSync(f.flag));
  assert.deepEqual(leftovers(f), []);
});

test('refusals come before anything is touched: a second transfer, too little space', async (t) => {
  const f = await fixture(t, { 'new.txt': 'new' }, { running: true });
  const first = receive(f, 't5');
  await assert.rejects(
    f.target.receive({
      id: 't6',
      operation: 'clone',
      source: { url: f.url, token: 'x'.repeat(32) },
      estimatedBytes: 10,
      writer: { host: 'h', port: 1 },
    }),
    (error: Error) => error instanceof TransferRefused && error.code === 'busy',
  );
  await first;
  await assert.rejects(
    f.target.receive({
      id: 't7',
      operation: 'clone',
      source: { url: f.url, token: 'x'.repeat(32) },
      estimatedBytes: 2 ** 60,
      writer: { host: 'h', port: 1 },
    }),
    (error: Error) =>
      error instanceof TransferRefused &&
      error.code === 'insufficient_space' &&
      /estimated at .* are free/.test(error.message),
  );
  assert.deepEqual(leftovers(f), []);
});

test('a pushed copy (restore from backup.dir) takes the same receive/swap path; a push nobody waits for is turned away', async (t) => {
  const f = await fixture(t, {}, { running: true });
  const source = join(f.dir, 'pushed');
  mkdirSync(source);
  writeFileSync(join(source, 'restored.txt'), 'restored');
  const body = gzipSync(execFileSync('tar', ['-C', source, '-cf', '-', '.']));
  // The agent's PUT route hands the request to acceptUpload; a plain server does the same here.
  const answers: Array<Promise<void> | undefined> = [];
  const server = createServer((request, response) => {
    const received = f.target.acceptUpload(String(request.url).slice(1), request);
    answers.push(received);
    if (!received) {
      request.resume();
      response.writeHead(404).end();
      return;
    }
    received.then(
      () => response.writeHead(200).end(),
      () => response.writeHead(422).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const put = (id: string) =>
    fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/${id}`, {
      method: 'PUT',
      headers: { 'x-switchyard-format': 'tar', 'x-switchyard-gtid': '0-1-9' },
      body,
    });

  assert.equal((await put('nobody-waits')).status, 404);
  await f.target.receive({
    id: 'r1',
    operation: 'restore',
    estimatedBytes: 1000,
    writer: { host: '10.0.0.1', port: 3306 },
  });
  assert.equal((await put('other-id')).status, 404, 'only the id that waits');
  assert.equal((await put('r1')).status, 200);
  assert.equal((await put('r1')).status, 404, 'a push is taken once');
  let status: TransferStatus | undefined;
  for (;;) {
    status = f.target.status('r1');
    if (status && (status.phase === 'done' || status.phase === 'failed')) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.equal(status.phase, 'done', status.error);
  assert.equal(status.operation, 'restore');
  assert.ok(existsSync(join(f.datadir, 'restored.txt')) && !existsSync(join(f.datadir, 'old.txt')));
  assert.deepEqual(f.repointed, ['10.0.0.1:3306@0-1-9']);
  assert.deepEqual(leftovers(f), []);
});

test('a pushed copy in an unknown format fails in receiving and leaves the server untouched', async (t) => {
  const f = await fixture(t, {}, { running: true });
  const server = createServer((request, response) => {
    const received = f.target.acceptUpload('r2', request);
    void received?.then(
      () => response.writeHead(200).end(),
      () => response.writeHead(422).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  await f.target.receive({
    id: 'r2',
    operation: 'restore',
    estimatedBytes: 10,
    writer: { host: 'h', port: 1 },
  });
  const answer = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, {
    method: 'PUT',
    headers: { 'x-switchyard-format': 'zip' },
    body: 'not a copy',
  });
  assert.equal(answer.status, 422);
  let status: TransferStatus | undefined;
  for (;;) {
    status = f.target.status('r2');
    if (status?.phase === 'failed') break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.match(status.error ?? '', /^receiving: the copy comes in an unknown format "zip"/);
  assert.equal(status.outcome, 'untouched-running');
  assert.ok(existsSync(join(f.datadir, 'old.txt')) && existsSync(f.flag));
  assert.deepEqual(leftovers(f), []);
});

test('a push cut midway (the manager gone) leaves the old datadir and says the server still runs', async (t) => {
  const f = await fixture(t, {}, { running: true });
  const source = join(f.dir, 'pushed');
  mkdirSync(source);
  writeFileSync(join(source, 'big.txt'), 'x'.repeat(200_000));
  const body = gzipSync(execFileSync('tar', ['-C', source, '-cf', '-', '.']));
  const server = createServer((request, response) => {
    void f.target.acceptUpload('r3', request)?.then(
      () => response.writeHead(200).end(),
      () => response.writeHead(422).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  await f.target.receive({
    id: 'r3',
    operation: 'restore',
    estimatedBytes: 1000,
    writer: { host: 'h', port: 1 },
  });
  const put = request({
    host: '127.0.0.1',
    port: (server.address() as AddressInfo).port,
    method: 'PUT',
    headers: { 'x-switchyard-format': 'tar', 'x-switchyard-gtid': '0-1-9' },
  });
  put.on('error', () => undefined);
  put.write(body.subarray(0, Math.floor(body.length / 2)));
  setTimeout(() => put.destroy(), 50);
  let status: TransferStatus | undefined;
  for (;;) {
    status = f.target.status('r3');
    if (status?.phase === 'failed' || status?.phase === 'done') break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.equal(status.phase, 'failed');
  assert.match(status.error ?? '', /^receiving: the stream from the source was cut/);
  assert.equal(status.outcome, 'untouched-running');
  assert.match(status.detail ?? '', /nothing was changed: the server is still running/);
  assert.ok(existsSync(join(f.datadir, 'old.txt')) && existsSync(f.flag));
  assert.deepEqual(leftovers(f), []);
});

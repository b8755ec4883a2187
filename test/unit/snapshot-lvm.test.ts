import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { ReadLock } from '../../src/snapshot/command.js';
import { LvmSnapshotMethod } from '../../src/snapshot/lvm.js';

function fakes(failOn?: string) {
  const calls: string[] = [];
  const run = async (file: string, args: string[]) => {
    calls.push([file, ...args].join(' '));
    if (file === 'cp') mkdirSync(args[args.length - 1] as string, { recursive: true });
    if (failOn && file === failOn) throw new Error(`${file} failed`);
    return { stdout: '', stderr: '' };
  };
  const readLock: ReadLock = async (work) => {
    calls.push('LOCK');
    try {
      return await work('0-1-42');
    } finally {
      calls.push('UNLOCK');
    }
  };
  return { calls, run, readLock };
}

test('lvm snapshot: lvcreate under the read lock, then mount ro, copy, umount, lvremove, in that order', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sy-lvm-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const { calls, run, readLock } = fakes();
  const method = new LvmSnapshotMethod({
    volume: 'vg0/mysql',
    size: '5G',
    datadirInVolume: 'data',
    targetDir: dir,
    server: {},
    run,
    readLock,
    measure: async () => 123,
  });
  const info = await method.take({ id: 's1' });
  assert.deepEqual(calls, [
    'LOCK',
    'lvcreate --snapshot --name sy-s1 --size 5G vg0/mysql',
    'UNLOCK',
    `mount -o ro /dev/vg0/sy-s1 ${dir}/.mnt-s1`,
    `cp -a -- ${dir}/.mnt-s1/data/. ${dir}/s1`,
    `umount ${dir}/.mnt-s1`,
    'lvremove -f vg0/sy-s1',
  ]);
  assert.equal(info.gtidPosition, '0-1-42');
  assert.equal(info.path, join(dir, 's1'));
  assert.equal(info.sizeBytes, 123);
  assert.deepEqual(
    (await method.list()).map((snapshot) => snapshot.id),
    ['s1'],
  );
  await method.remove(info);
  assert.deepEqual(await method.list(), []);
});

test('lvm snapshot: a failed copy still unmounts and removes the snapshot volume, and leaves no copy', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sy-lvm-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const { calls, run, readLock } = fakes('cp');
  const method = new LvmSnapshotMethod({
    volume: 'vg0/mysql',
    size: '1G',
    targetDir: dir,
    server: {},
    run,
    readLock,
  });
  await assert.rejects(method.take({ id: 's2' }), /cp failed/);
  assert.deepEqual(calls.slice(-2), [`umount ${dir}/.mnt-s2`, 'lvremove -f vg0/sy-s2']);
  assert.deepEqual(await method.list(), []);
});

test('lvm snapshot: a failed mount skips umount but still removes the snapshot volume', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sy-lvm-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const { calls, run, readLock } = fakes('mount');
  const method = new LvmSnapshotMethod({
    volume: 'vg0/mysql',
    size: '1G',
    targetDir: dir,
    server: {},
    run,
    readLock,
  });
  await assert.rejects(method.take({ id: 's3' }), /mount failed/);
  assert.ok(!calls.some((call) => call.startsWith('umount')));
  assert.equal(calls.at(-1), 'lvremove -f vg0/sy-s3');
});

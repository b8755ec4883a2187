import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { connect } from 'node:net';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { createTestNetwork } from '../support/netns.js';
import { requireBinaries, requireRoot } from '../support/binaries.js';

const RUNNER = new URL('../support/vip-driver-run.ts', import.meta.url).pathname;

/** What a client gets when it connects: 'connected', or the error code (ECONNREFUSED, timeout). */
function tryConnect(ip: string, port: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host: ip, port });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve('timeout');
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(error.code ?? error.message);
    });
  });
}

// A client whose ARP cache still names the old holder (pinned here as a permanent neighbour entry)
// keeps sending to it after the VIP moved. The old holder refuses such connections at once.
test('a VIP removed from a host is refused there for clients with a stale ARP entry, and accepted again when it comes back', async (t) => {
  if (
    !requireRoot(t, 'network namespaces and iptables') ||
    !requireBinaries(t, [['iptables', 'iptables']])
  )
    return;
  const network = await createTestNetwork(t, ['db1']);
  const db1 = network.host('db1');
  const vip = network.vip(100);
  const driver = (operation: 'add' | 'remove', ...flags: string[]) =>
    db1.exec(process.execPath, ['--import', 'tsx', RUNNER, operation, vip, 'eth0', ...flags]);
  const { stdout: mac } = await db1.exec('cat', ['/sys/class/net/eth0/address']);
  const refusalRules = async () =>
    (await db1.exec('iptables', ['-t', 'nat', '-S', 'PREROUTING'])).stdout
      .split('\n')
      .filter((line) => line.includes('switchyard') && line.includes(vip)).length;

  await driver('add');
  await promisify(execFile)('ip', [
    'neigh',
    'replace',
    vip,
    'lladdr',
    mac.trim(),
    'dev',
    network.bridge,
    'nud',
    'permanent',
  ]);
  assert.equal(await tryConnect(vip, 3306, 2000), 'ECONNREFUSED', 'held, nothing listening');

  await driver('remove');
  assert.equal(await refusalRules(), 1, 'one refusal rule after the removal');
  assert.equal(
    await tryConnect(vip, 3306, 2000),
    'ECONNREFUSED',
    'moved away: refused at once instead of dropped',
  );

  await driver('add');
  assert.equal(await refusalRules(), 0, 'the rule is gone when the VIP comes back');
  await driver('remove', '--no-refuse');
  assert.equal(await refusalRules(), 0);
  assert.equal(
    await tryConnect(vip, 3306, 1500),
    'timeout',
    'without the rule the stale client waits (the SYN is dropped)',
  );
});

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { requireBinaries, requireRoot } from '../support/binaries.js';
import { createTestNetwork } from '../support/netns.js';

const run = promisify(execFile);

test('netns bench: hosts reach each other over the bridge and are fully removed', async (t) => {
  if (
    !requireRoot(t, 'network namespaces') ||
    !requireBinaries(t, [
      ['ip', 'iproute2'],
      ['ping', 'iputils-ping'],
    ])
  )
    return;
  const network = await createTestNetwork(t, ['a', 'b']);
  const a = network.host('a');
  const b = network.host('b');
  await a.exec('ping', ['-c', '1', '-W', '2', b.address]);
  await run('ping', ['-c', '1', '-W', '2', a.address]);
  const { stdout } = await a.exec('ip', ['-4', 'addr', 'show', 'dev', 'eth0']);
  assert.match(stdout, new RegExp(a.address.replaceAll('.', '\\.')));
  await network.destroy();
  const namespaces = (await run('ip', ['netns', 'list'])).stdout;
  assert.ok(
    !namespaces.includes(a.namespace) && !namespaces.includes(b.namespace),
    'namespaces deleted',
  );
  const links = (await run('ip', ['link', 'show'])).stdout;
  assert.ok(!links.includes(network.bridge), 'bridge deleted');
});

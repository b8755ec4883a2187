import assert from 'node:assert/strict';
import { test } from 'node:test';
import { discoverWriter, WriterDiscoveryError } from '../../src/checksum/hosts.js';
import type { LoadedConfig } from '../../src/config/load.js';
import type { Connection } from '../../src/mysql/connect.js';

const config = { hosts: { db1: {}, db2: {}, db3: {} } } as unknown as LoadedConfig;

function connector(
  readOnly: Record<string, number | 'down'>,
): (host: string) => Promise<Connection> {
  return async (host) => {
    const value = readOnly[host];
    if (value === 'down') throw new Error('connect ECONNREFUSED');
    return {
      query: async () => [[{ ro: value }]],
      destroy: () => undefined,
    } as unknown as Connection;
  };
}

test('the writer is the single reachable host with read_only=0', async () => {
  assert.equal(await discoverWriter(config, connector({ db1: 1, db2: 0, db3: 1 })), 'db2');
  assert.equal(await discoverWriter(config, connector({ db1: 0, db2: 'down', db3: 1 })), 'db1');
});

test('no writable host, or two, is refused with a message naming them', async () => {
  await assert.rejects(
    discoverWriter(config, connector({ db1: 1, db2: 1, db3: 'down' })),
    (error: Error) => {
      assert.ok(error instanceof WriterDiscoveryError);
      assert.match(error.message, /no reachable host has read_only=0.*unreachable: db3/);
      return true;
    },
  );
  await assert.rejects(
    discoverWriter(config, connector({ db1: 0, db2: 0, db3: 1 })),
    /more than one host is writable \(db1, db2\)/,
  );
});

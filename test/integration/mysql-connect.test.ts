import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openConnection } from '../../src/mysql/connect.js';
import { MARIADB, requireBinaries } from '../support/binaries.js';
import { startSandbox } from '../support/sandbox.js';

// A half-closed socket to a host that vanished stays open for TCP's retransmission timeout and
// keeps the process alive (seen: a test run that never ended). destroy() must close it at once.
test('destroy() closes the socket at once, not after the server answers the FIN', async (t) => {
  if (!requireBinaries(t, MARIADB)) return;
  const sandbox = await startSandbox(t, { masters: 1, replicas: 0 });
  const db1 = sandbox.instance('db1');
  const connection = await openConnection({ socketPath: db1.socket, user: 'root' });
  const stream = (connection as unknown as { connection: { stream: { destroyed: boolean } } })
    .connection.stream;
  assert.equal(stream.destroyed, false);
  connection.destroy();
  assert.equal(stream.destroyed, true, 'the socket is closed synchronously');
});

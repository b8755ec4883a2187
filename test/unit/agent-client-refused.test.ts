/**
 * The manager tells "no agent process on that host" (its port refuses the connection) apart from
 * "no answer" (cut off, hung, slow): only the first means nothing there would fence the host.
 */
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { test } from 'node:test';
import { AgentClient, agentNotListening } from '../../src/actuator/agent-client.js';

const REQUEST = { seq: 1, host: 'db1', prefix: 24, vips: [], interval_ms: 1000 };

function client(port: number) {
  return new AgentClient({
    url: `http://127.0.0.1:${port}`,
    token: () => 'token',
    timeoutMs: 300,
    retries: 0,
  });
}

async function listening(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as { port: number }).port;
}

test('a refused connection says no agent listens; a silent one does not', async () => {
  const closed = createServer();
  const port = await listening(closed);
  await new Promise((resolve) => closed.close(resolve));
  const refused = await client(port)
    .sync(REQUEST)
    .then(
      () => undefined,
      (error: unknown) => error,
    );
  assert.equal(agentNotListening(refused), true, String(refused));

  // Accepts the connection and never answers: an agent that may still be running.
  const sockets = new Set<Socket>();
  const silent = createServer((socket) => sockets.add(socket));
  const silentPort = await listening(silent);
  try {
    const timedOut = await client(silentPort)
      .sync(REQUEST)
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    assert.match(String(timedOut), /no answer within 300 ms/);
    assert.equal(agentNotListening(timedOut), false);
  } finally {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
  }
});

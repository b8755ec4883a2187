/**
 * A VIP call made with a bound (a monitor cycle's routine move) is tried once within it; without
 * one, the client's own timeout and retries apply.
 */
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { test } from 'node:test';
import { AgentClient } from '../../src/actuator/agent-client.js';

async function silentAgent(): Promise<{
  port: number;
  requests: () => number;
  close(): Promise<void>;
}> {
  const sockets = new Set<Socket>();
  let requests = 0;
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('data', (chunk) => {
      requests += chunk.toString('latin1').split('POST /api/v1/vips/').length - 1;
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    requests: () => requests,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

test("a bounded VIP call to a silent agent is sent once and gives up at the bound; an unbounded one uses the client's retries", async () => {
  const agent = await silentAgent();
  try {
    const client = new AgentClient({
      url: `http://127.0.0.1:${agent.port}`,
      token: () => 'token',
      timeoutMs: 150,
      retries: 2,
      retryDelayMs: 10,
    });
    const bounded = await client
      .addVip('10.0.0.101', 'eth0', 24, 1, { timeoutMs: 100, retries: 0 })
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    assert.match(String(bounded), /no answer within 100 ms/);
    assert.equal(agent.requests(), 1, 'one attempt');

    const removed = await client
      .removeVip('10.0.0.101', 'eth0', 2, { timeoutMs: 100, retries: 0 })
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    assert.match(String(removed), /no answer within 100 ms/);
    assert.equal(agent.requests(), 2, 'one attempt');

    const unbounded = await client.addVip('10.0.0.101', 'eth0', 24, 3).then(
      () => undefined,
      (error: unknown) => error,
    );
    assert.match(String(unbounded), /no answer within 150 ms/);
    assert.equal(agent.requests(), 5, 'three attempts: agent_retries 2');
  } finally {
    await agent.close();
  }
});

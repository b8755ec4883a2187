import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';
import type { createAgentApp } from '../../src/agent/server.js';
import type { HeldAddress, VipDriver } from '../../src/agent/vip-driver.js';
import { listen } from '../../src/api/server.js';

/** An interface in memory: what an agent holds, and every add and remove it ran. */
export class MemoryVipDriver implements VipDriver {
  readonly calls: string[] = [];
  constructor(public held: HeldAddress[] = []) {}
  async list(): Promise<HeldAddress[]> {
    return this.held.map((address) => ({ ...address }));
  }
  async add(ip: string, prefix: number): Promise<void> {
    this.calls.push(`add ${ip}`);
    this.held.push({ ip, prefix });
  }
  async remove(ip: string): Promise<void> {
    this.calls.push(`del ${ip}`);
    this.held = this.held.filter((address) => address.ip !== ip);
  }
  async announce(): Promise<string> {
    return 'sent';
  }
}

/** Serves an agent app on a free loopback port until the test ends; returns its base URL. */
export async function serveAgent(
  t: TestContext,
  app: ReturnType<typeof createAgentApp>,
): Promise<string> {
  const server = await listen(app, '127.0.0.1:0');
  t.after(() => {
    app.runtime.stop();
    server.close();
    server.closeAllConnections();
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

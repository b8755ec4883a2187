import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

export function isPortFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * The first port the kernel hands out as the local end of outgoing connections
 * (net.ipv4.ip_local_port_range), or undefined where that cannot be read.
 */
export function ephemeralPortLow(
  read: () => string = () => readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8'),
): number | undefined {
  try {
    const low = Number(read().trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 0 ? low : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Where port ranges are picked: [low, high) cut below the kernel's ephemeral range. A port found
 * free is often bound only later (a manager's or an agent's listener started after its
 * servers), and inside the ephemeral range any outgoing connection of the test run may take it
 * meanwhile as its local port: the listener then fails to bind.
 */
export function portWindow(
  low: number,
  high: number,
  ephemeralLow: number | undefined,
): { low: number; high: number } {
  if (ephemeralLow === undefined || ephemeralLow - low < 2_000) return { low, high };
  return { low, high: Math.min(high, ephemeralLow) };
}

/**
 * Finds `count` consecutive free ports, starting at a random base so parallel test runs rarely
 * collide, below the ephemeral range (portWindow).
 */
export async function findFreePortRange(
  count: number,
  low = 20_000,
  high = 40_000,
): Promise<number> {
  const window = portWindow(low, high, ephemeralPortLow());
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = window.low + Math.floor(Math.random() * (window.high - window.low - count));
    const checks = await Promise.all(
      Array.from({ length: count }, (_, index) => isPortFree(base + index)),
    );
    if (checks.every(Boolean)) return base;
  }
  throw new Error(`no range of ${count} free ports found between ${window.low} and ${window.high}`);
}

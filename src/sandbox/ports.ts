import { createServer } from 'node:net';

export function isPortFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** Finds `count` consecutive free ports, starting at a random base so parallel test runs rarely collide. */
export async function findFreePortRange(
  count: number,
  low = 20_000,
  high = 40_000,
): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = low + Math.floor(Math.random() * (high - low - count));
    const checks = await Promise.all(
      Array.from({ length: count }, (_, index) => isPortFree(base + index)),
    );
    if (checks.every(Boolean)) return base;
  }
  throw new Error(`no range of ${count} free ports found between ${low} and ${high}`);
}

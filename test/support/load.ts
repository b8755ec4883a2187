import type { TestContext } from 'node:test';
import { openConnection, type Connection } from '../../src/mysql/connect.js';
import { MYSQL_PORT, type NetnsCluster } from './netns-cluster.js';
import { WritableSampler } from './writable-sampler.js';
import { WriteProbe } from './write-probe.js';

/**
 * The application as a failover test sees it: writes through the writer VIP every `intervalMs`,
 * and @@read_only sampled on every host over its local socket; both stopped when the test ends.
 */
export function startLoad(
  t: TestContext | undefined,
  cluster: NetnsCluster,
  intervalMs = 10,
): { writes: WriteProbe; sampler: WritableSampler } {
  const writes = new WriteProbe({
    host: cluster.writerVip,
    port: MYSQL_PORT,
    user: cluster.appUser.user,
    password: cluster.appUser.password,
    table: 'app.writes',
    intervalMs,
  });
  const sampler = new WritableSampler(
    Object.fromEntries(
      [...cluster.instances.keys()].map((name) => [
        name,
        { socketPath: cluster.instance(name).socket, user: 'root' },
      ]),
    ),
    25,
  );
  sampler.start();
  writes.start();
  t?.after(async () => {
    await writes.stop();
    await sampler.stop();
  });
  return { writes, sampler };
}

/**
 * Clients on one host's own side of a partition: they write over its local socket (ids from
 * `firstId` up, not to collide with the VIP load) and keep the time of every acknowledgement.
 */
export function startLocalWrites(
  cluster: NetnsCluster,
  host: string,
  firstId = 1_000_000_000,
  intervalMs = 10,
): { acked(): number[]; stop(): Promise<number[]> } {
  const acked: number[] = [];
  let running = true;
  let id = firstId;
  const loop = (async () => {
    while (running) {
      let connection: Connection | undefined;
      try {
        connection = await openConnection({
          socketPath: cluster.instance(host).socket,
          user: cluster.appUser.user,
          password: cluster.appUser.password,
          connectTimeoutMs: 500,
        });
        while (running) {
          id += 1;
          await connection.query(
            { sql: 'INSERT INTO app.writes (id, at) VALUES (?, ?)', timeout: 1000 },
            [id, Date.now()],
          );
          acked.push(Date.now());
          await new Promise((resolve) => setTimeout(resolve, intervalMs));
        }
      } catch {
        await new Promise((resolve) => setTimeout(resolve, intervalMs));
      } finally {
        connection?.destroy();
      }
    }
  })();
  return {
    /** When each acknowledged write returned so far (ms since the epoch). */
    acked() {
      return [...acked];
    },
    async stop() {
      running = false;
      await loop;
      return acked;
    },
  };
}

/** Which server answers at `address` (a VIP), or undefined when nothing does within the timeout. */
export async function serverIdAt(
  address: string,
  credentials: { user: string; password: string },
  connectTimeoutMs = 500,
): Promise<number | undefined> {
  let connection: Connection | undefined;
  try {
    connection = await openConnection({
      host: address,
      port: MYSQL_PORT,
      user: credentials.user,
      password: credentials.password,
      connectTimeoutMs,
    });
    const [rows] = await connection.query('SELECT @@server_id AS id');
    return Number((rows as Array<{ id: number }>)[0]?.id);
  } catch {
    return undefined;
  } finally {
    connection?.destroy();
  }
}

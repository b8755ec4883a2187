/**
 * bench/reader-availability: kill -9 of the writer's mariadbd while a client reads through every
 * reader VIP every 10 ms. Reports, per run, the longest gap between successful reads on each
 * reader VIP held by a healthy replica, and whether such a VIP was ever unassigned or moved (the
 * roles are sampled every 10 ms). The dead writer's own reader VIP must move: its gap is reported
 * apart. Between runs the killed host is started again and set online. Needs root.
 *
 *   npx tsx bench/reader-availability.ts [--runs 5]
 */
import { openConnection, type Connection } from '../src/mysql/connect.js';
import { MYSQL_PORT, startNetnsCluster } from '../test/support/netns-cluster.js';
import { median, option, startBenchDaemon, until } from './support.js';

const runs = Number(option('--runs', '5'));

class Reader {
  readonly okAt: number[] = [];
  private running = true;
  private readonly loop: Promise<void>;
  constructor(
    readonly ip: string,
    user: string,
    password: string,
  ) {
    this.loop = (async () => {
      let connection: Connection | undefined;
      while (this.running) {
        try {
          connection ??= await openConnection({
            host: ip,
            port: MYSQL_PORT,
            user,
            password,
            connectTimeoutMs: 300,
          });
          await connection.query({ sql: 'SELECT 1', timeout: 300 });
          this.okAt.push(Date.now());
        } catch {
          connection?.destroy();
          connection = undefined;
        }
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      connection?.destroy();
    })();
  }
  longestGap(from: number, to: number): number {
    const points = [from, ...this.okAt.filter((at) => at > from && at < to), to];
    let gap = 0;
    for (let index = 1; index < points.length; index++)
      gap = Math.max(gap, (points[index] as number) - (points[index - 1] as number));
    return gap;
  }
  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}

const cluster = await startNetnsCluster(undefined, {});
const healthyGaps: number[] = [];
const deadHostGaps: number[] = [];
let unassigned = 0;
try {
  const daemon = await startBenchDaemon(cluster.config);
  try {
    await until(
      'roles',
      () => daemon.status().roles.writer?.[cluster.writerVip] === 'db1',
      30_000,
      50,
    );
    const readerIps = cluster.config.roles.reader?.ips ?? [];
    const readers = readerIps.map(
      (ip) => new Reader(ip, cluster.appUser.user, cluster.appUser.password),
    );
    await new Promise((resolve) => setTimeout(resolve, 2000));
    for (let run = 1; run <= runs; run++) {
      const writer = daemon.status().roles.writer?.[cluster.writerVip] as string;
      const before = { ...(daemon.status().roles.reader ?? {}) };
      const healthy = Object.entries(before)
        .filter(([, holder]) => holder !== writer)
        .map(([ip]) => ip);
      let moved = 0;
      const watch = setInterval(() => {
        const now = daemon.status().roles.reader ?? {};
        for (const ip of healthy) if (now[ip] !== before[ip]) moved += 1;
      }, 10);
      const killedAt = Date.now();
      await cluster.instance(writer).kill();
      await until(
        'a new writer',
        () => daemon.status().roles.writer?.[cluster.writerVip] !== writer,
        60_000,
        10,
      );
      await new Promise((resolve) => setTimeout(resolve, 3000));
      clearInterval(watch);
      const end = Date.now();
      const gaps = readers.map((reader) => ({
        ip: reader.ip,
        gap: reader.longestGap(killedAt, end),
        healthy: healthy.includes(reader.ip),
      }));
      for (const gap of gaps) (gap.healthy ? healthyGaps : deadHostGaps).push(gap.gap);
      unassigned += moved;
      console.log(
        `run ${run}: killed ${writer}; longest read gap per reader VIP: ${gaps.map((gap) => `${gap.ip}${gap.healthy ? '' : " (dead host's)"} ${gap.gap} ms`).join(', ')}; healthy replicas' VIPs unassigned or moved: ${moved ? `${moved} samples` : 'never'}`,
      );
      await cluster.instance(writer).start();
      await until(
        `${writer} held`,
        () =>
          daemon.status().hosts.find((host) => host.name === writer)?.state === 'AWAITING_RECOVERY',
        60_000,
        100,
      );
      await until(
        `${writer} replicating`,
        async () =>
          (await cluster.instance(writer).sql('SHOW SLAVE STATUS'))[0]?.Slave_IO_Running === 'Yes',
        30_000,
        100,
      );
      const online = await daemon.engine.setOnline(writer);
      if (!online.ok) throw new Error(`set-online refused: ${online.detail}`);
      await new Promise((resolve) => setTimeout(resolve, 4000));
    }
    await Promise.all(readers.map((reader) => reader.stop()));
  } finally {
    await daemon.stop();
  }
} finally {
  await cluster.destroy();
}
console.log('');
console.log(`reader availability over ${runs} writer kills (monitor 300 ms, 3 failures)`);
console.log(
  `  healthy replicas' reader VIPs: longest read gap median ${median(healthyGaps)} ms, worst ${Math.max(...healthyGaps)} ms; unassigned or moved: ${unassigned === 0 ? 'never' : `${unassigned} samples`}`,
);
console.log(
  `  the dead writer's reader VIP (moves to a survivor): gap median ${median(deadHostGaps)} ms, worst ${Math.max(...deadHostGaps)} ms`,
);
// Everything was stopped and removed above; do not wait for idle keep-alive sockets to time out.
process.exit(0);

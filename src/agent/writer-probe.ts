import { Socket } from 'node:net';
import { Repeating } from './repeating.js';

export interface ProbeTarget {
  host: string;
  address: string;
  port: number;
}

export interface ProbeResult {
  target: string;
  /** The server answered with its greeting (or any protocol packet: it is alive). */
  ok: boolean;
  /** The port refused the connection: nothing listens there (mysqld is dead, the host is up). */
  refused: boolean;
  detail: string;
  startedAt: number;
  finishedAt: number;
}

/**
 * One probe of a MySQL port: TCP connect, then the first bytes of the server's greeting. A
 * listening socket whose server never greets (hung mysqld) is not alive. No credentials, no
 * query: the probe only asks "is a MySQL server answering there", from this host's side.
 */
export function probeMysqlPort(target: ProbeTarget, timeoutMs: number): Promise<ProbeResult> {
  const startedAt = Date.now();
  return new Promise((resolve) => {
    const socket = new Socket();
    let settled = false;
    const finish = (ok: boolean, detail: string, refused = false) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ target: target.host, ok, refused, detail, startedAt, finishedAt: Date.now() });
    };
    const timer = setTimeout(() => finish(false, `no greeting within ${timeoutMs} ms`), timeoutMs);
    socket.once('data', (chunk: Buffer) => {
      // A MySQL packet: 3-byte length, sequence id, then 0x0a (handshake) or 0xff (error, e.g.
      // too many connections): either way a server is running there.
      finish(
        chunk.length >= 5,
        chunk.length >= 5 ? `greeting from ${target.address}:${target.port}` : 'short answer',
      );
    });
    socket.once('error', (error: NodeJS.ErrnoException) =>
      finish(false, `${error.code ?? error.message}`, error.code === 'ECONNREFUSED'),
    );
    socket.once('close', () => finish(false, 'closed before the greeting'));
    socket.connect(target.port, target.address);
  });
}

/**
 * Probes the writer's MySQL port every interval, one probe at a time, and keeps the latest
 * result for the manager's per-cycle exchange. The manager says whom to probe (the writer
 * moves); a probe of an old target still under way is discarded.
 */
export class WriterProbe {
  private target?: ProbeTarget;
  private intervalMs = 1000;
  private timeoutMs = 1000;
  private readonly probes = new Repeating(() => this.tick(), { intervalMs: () => this.intervalMs });
  private result?: ProbeResult;

  constructor(
    private readonly probe: (
      target: ProbeTarget,
      timeoutMs: number,
    ) => Promise<ProbeResult> = probeMysqlPort,
  ) {}

  configure(target: ProbeTarget | undefined, intervalMs: number, timeoutMs: number): void {
    const changed = !sameTarget(target, this.target);
    this.target = target;
    this.intervalMs = Math.max(100, intervalMs);
    this.timeoutMs = Math.max(100, timeoutMs);
    if (changed) this.result = undefined;
    if (!target) {
      this.stop();
      return;
    }
    this.probes.start();
  }

  latest(): ProbeResult | undefined {
    return this.result;
  }

  stop(): void {
    this.probes.stop();
  }

  private async tick(): Promise<void> {
    const target = this.target;
    if (!target) return;
    const result = await this.probe(target, this.timeoutMs);
    if (sameTarget(target, this.target)) this.result = result;
  }
}

function sameTarget(a: ProbeTarget | undefined, b: ProbeTarget | undefined): boolean {
  return a?.host === b?.host && a?.address === b?.address && a?.port === b?.port;
}

import { spawn, type ChildProcess } from 'node:child_process';
import { Transform, type TransformCallback } from 'node:stream';

/** Counts bytes passing through; `onChunk` sees the running total. */
export class ByteCounter extends Transform {
  bytes = 0;
  constructor(private readonly onChunk?: (total: number) => void) {
    super();
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    this.onChunk?.(this.bytes);
    callback(null, chunk);
  }
}

/**
 * Caps throughput at `bytesPerSecond` by holding a chunk back while the bytes sent so far are
 * ahead of the rate since the start: a clone must not starve the source host's production traffic.
 */
export class Throttle extends Transform {
  private sent = 0;
  private readonly started = Date.now();
  constructor(private readonly bytesPerSecond: number) {
    super();
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.sent += chunk.length;
    const due = this.started + (this.sent / this.bytesPerSecond) * 1000;
    const wait = due - Date.now();
    if (wait <= 0) callback(null, chunk);
    else setTimeout(() => callback(null, chunk), wait);
  }
}

/** The last lines of a child's stderr, for error messages. */
export function collectStderr(child: ChildProcess): () => string {
  let text = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    text = (text + chunk.toString('utf8')).slice(-4000);
  });
  return () => text.trim().split('\n').slice(-4).join(' | ');
}

/** Resolves on exit 0, rejects with the program's last stderr lines otherwise. */
export function exitOf(child: ChildProcess, what: string, stderr: () => string): Promise<void> {
  return new Promise((resolve, reject) => {
    child.once('error', (error) => reject(new Error(`${what}: ${error.message}`)));
    child.once('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${what} failed (exit ${code ?? signal}): ${stderr() || 'no output'}`));
    });
  });
}

export function spawnProgram(
  file: string,
  args: string[],
  stdin: 'pipe' | 'ignore',
): { child: ChildProcess; done: Promise<void> } {
  const child = spawn(file, args, { stdio: [stdin, 'pipe', 'pipe'] });
  const stderr = collectStderr(child);
  const done = exitOf(child, file, stderr);
  done.catch(() => undefined);
  return { child, done };
}

/** "1.5 GiB" */
export function humanBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

/** "50M", "1.5G", "800K", "100000" (bytes per second) -> bytes. */
export function parseByteRate(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?(?:\/s)?$/i.exec(text.trim());
  if (!match)
    throw new Error(
      `"${text}" is not a rate such as 50M (bytes per second; K, M, G, T are powers of 1024)`,
    );
  const factor = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[
    (match[2] as string).toUpperCase() as '' | 'K' | 'M' | 'G' | 'T'
  ];
  const value = Number(match[1]) * factor;
  if (value < 1024) throw new Error(`rate ${text} is below 1 KiB/s`);
  return Math.floor(value);
}

import { spawn } from 'node:child_process';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';

export interface StreamProgress {
  /** Uncompressed backup bytes produced by the source so far. */
  rawBytes: number;
  /** Bytes after gzip: what crosses the wire when source and target are different machines. */
  compressedBytes: number;
}

class Counter extends Transform {
  bytes = 0;
  constructor(private readonly onChunk: () => void) {
    super();
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    this.onChunk();
    callback(null, chunk);
  }
}

function collectStderr(child: ReturnType<typeof spawn>): () => string {
  let text = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    text = (text + chunk.toString('utf8')).slice(-4000);
  });
  return () => text.trim().split('\n').slice(-4).join(' | ');
}

function exitOf(
  child: ReturnType<typeof spawn>,
  what: string,
  stderr: () => string,
): Promise<void> {
  return new Promise((resolve, reject) => {
    child.on('error', (error) => reject(new Error(`${what}: ${error.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${what} failed (exit ${code ?? signal}): ${stderr() || 'no output'}`));
    });
  });
}

/**
 * Runs `source` (writing an mbstream on stdout) into `sink` (reading it on stdin) through a gzip
 * compressor and decompressor, counting bytes on both sides. Both programs get argument arrays;
 * if either fails, the other is killed so nothing is left half-running.
 */
export async function streamCompressed(
  source: { file: string; args: string[] },
  sink: { file: string; args: string[] },
  onProgress?: (progress: StreamProgress) => void,
): Promise<StreamProgress> {
  const producer = spawn(source.file, source.args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const consumer = spawn(sink.file, sink.args, { stdio: ['pipe', 'ignore', 'pipe'] });
  const producerErr = collectStderr(producer);
  const consumerErr = collectStderr(consumer);
  const progress: StreamProgress = { rawBytes: 0, compressedBytes: 0 };
  const report = () => onProgress?.({ ...progress });
  const raw = new Counter(() => {
    progress.rawBytes = raw.bytes;
  });
  const wire = new Counter(() => {
    progress.compressedBytes = wire.bytes;
    report();
  });
  const exits = Promise.all([
    exitOf(producer, source.file, producerErr),
    exitOf(consumer, sink.file, consumerErr),
  ]);
  const piped = pipeline(
    producer.stdout,
    raw,
    createGzip({ level: 1 }),
    wire,
    createGunzip(),
    consumer.stdin,
  ).then(
    () => undefined,
    (error: Error & { code?: string }) => error,
  );
  const pipeError = await piped;
  if (pipeError) {
    // An extractor may exit as soon as it has read the archive's end marker (tar leaves the
    // block padding unread); that closes its stdin early, which is fine when it exits 0.
    const benign = pipeError.code === 'ERR_STREAM_PREMATURE_CLOSE' || pipeError.code === 'EPIPE';
    if (!benign) {
      producer.kill('SIGKILL');
      consumer.kill('SIGKILL');
    }
    // Prefer the program's own complaint over a generic stream error.
    const exitError = await exits.then(
      () => undefined,
      (failure: Error) => failure,
    );
    if (exitError) throw exitError;
    if (!benign) throw pipeError;
  } else {
    await exits;
  }
  report();
  return progress;
}

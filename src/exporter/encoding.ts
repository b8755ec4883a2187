import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import type { Rendered } from './merge.js';

const gzipAsync = promisify(gzip);

/**
 * Fastest level: an exposition is the same few label sets over and over, so level 1 already
 * takes a fleet's 1.3 MiB to about a tenth, in a few milliseconds; higher levels save little more
 * for several times the CPU.
 */
const GZIP_LEVEL = 1;

const compressed = new WeakMap<Rendered, Promise<Buffer>>();

/**
 * A rendering gzip-compressed, once however many scrapes share it (a fleet's renderings are
 * shared, merge.ts). zlib runs on libuv's thread pool, so the event loop that runs the clusters'
 * cycles only hands the bytes over.
 */
export function gzipped(rendered: Rendered): Promise<Buffer> {
  let body = compressed.get(rendered);
  if (!body) {
    // Output room for the whole result: zlib otherwise comes back to the event loop for every
    // 16 KiB of output (six times for a fleet's exposition), each return waiting behind the
    // cycles' work. An exposition compresses to a fraction of its size; output beyond this room
    // would only cost one more return.
    const chunkSize = Math.max(16 * 1024, Buffer.byteLength(rendered.body));
    body = gzipAsync(rendered.body, { level: GZIP_LEVEL, chunkSize });
    compressed.set(rendered, body);
  }
  return body;
}

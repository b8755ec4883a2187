import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

const NEWLINE = 0x0a;

/**
 * The lines of a file from the last to the first, read backwards in chunks: the newest entries of
 * a journal of any size cost one small read. Splitting bytes at "\n" is safe in UTF-8 (no
 * multi-byte character contains that byte). Stopping the iteration early closes the file.
 * A missing file has no lines.
 */
export function* linesBackward(file: string, chunkSize = 64 * 1024): Generator<string> {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  try {
    let position = fstatSync(fd).size;
    // The start of a line whose beginning lies in a chunk not read yet.
    let carry = Buffer.alloc(0);
    while (position > 0) {
      const start = Math.max(0, position - chunkSize);
      const chunk = Buffer.allocUnsafe(position - start);
      readSync(fd, chunk, 0, chunk.length, start);
      position = start;
      const data = carry.length > 0 ? Buffer.concat([chunk, carry]) : chunk;
      let end = data.length;
      while (end > 0) {
        const newline = data.lastIndexOf(NEWLINE, end - 1);
        if (newline < 0) break;
        if (newline + 1 < end) yield data.toString('utf8', newline + 1, end);
        end = newline;
      }
      carry = Buffer.from(data.subarray(0, end));
    }
    if (carry.length > 0) yield carry.toString('utf8');
  } finally {
    closeSync(fd);
  }
}

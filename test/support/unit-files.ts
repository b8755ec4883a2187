import { readFileSync } from 'node:fs';

/**
 * The node options between the node binary and the script in a systemd unit file's last
 * ExecStart (a drop-in resets it with an empty one first): what systemd would run.
 */
export function unitFileNodeFlags(file: string): string[] {
  const commands = [...readFileSync(file, 'utf8').matchAll(/^ExecStart=(.+)$/gm)];
  const words = (commands.at(-1)?.[1] ?? '').split(/\s+/);
  return words.slice(
    1,
    words.findIndex((word) => word.endsWith('switchyard.js')),
  );
}

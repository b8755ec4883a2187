import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface HeldAddress {
  ip: string;
  prefix: number;
}

/** The host-side operations behind the agent's VIP endpoints; a fake stands in for unit tests. */
export interface VipDriver {
  /** IPv4 addresses on the interface; throws when the interface does not exist. */
  list(iface: string): Promise<HeldAddress[]>;
  add(ip: string, prefix: number, iface: string): Promise<void>;
  remove(ip: string, prefix: number, iface: string): Promise<void>;
  /** Gratuitous ARP so neighbours update their caches; takes about a second, callers do not wait on it. */
  announce(ip: string, iface: string): Promise<string>;
}

function commandError(command: string, args: string[], error: unknown): Error {
  const stderr = String((error as { stderr?: string }).stderr ?? '').trim();
  return new Error(`${command} ${args.join(' ')} failed: ${stderr || (error as Error).message}`);
}

/** iproute2 and iputils-arping through execFile with argument arrays (never a shell). */
export class IpCommandDriver implements VipDriver {
  constructor(
    private readonly options: { ip?: string; arping?: string; timeoutMs?: number } = {},
  ) {}

  private async exec(command: string, args: string[]): Promise<string> {
    try {
      const { stdout } = await run(command, args, { timeout: this.options.timeoutMs ?? 10_000 });
      return stdout;
    } catch (error) {
      throw commandError(command, args, error);
    }
  }

  async list(iface: string): Promise<HeldAddress[]> {
    const stdout = await this.exec(this.options.ip ?? 'ip', [
      '-j',
      '-4',
      'addr',
      'show',
      'dev',
      iface,
    ]);
    return parseIpAddrJson(stdout);
  }

  async add(ip: string, prefix: number, iface: string): Promise<void> {
    await this.exec(this.options.ip ?? 'ip', ['addr', 'add', `${ip}/${prefix}`, 'dev', iface]);
  }

  async remove(ip: string, prefix: number, iface: string): Promise<void> {
    await this.exec(this.options.ip ?? 'ip', ['addr', 'del', `${ip}/${prefix}`, 'dev', iface]);
  }

  async announce(ip: string, iface: string): Promise<string> {
    // iputils arping: -U unsolicited (gratuitous) ARP, one packet, from this interface.
    const stdout = await this.exec(this.options.arping ?? 'arping', [
      '-U',
      '-c',
      '1',
      '-I',
      iface,
      ip,
    ]);
    return stdout
      .trim()
      .split('\n')
      .map((line) => line.trim())
      .filter(Boolean)
      .join(' | ');
  }
}

/** Parses `ip -j addr show dev IFACE` (iproute2 JSON). */
export function parseIpAddrJson(stdout: string): HeldAddress[] {
  const parsed = JSON.parse(stdout === '' ? '[]' : stdout) as Array<{
    addr_info?: Array<{ family?: string; local?: string; prefixlen?: number }>;
  }>;
  const held: HeldAddress[] = [];
  for (const link of parsed) {
    for (const address of link.addr_info ?? []) {
      if (
        address.family === 'inet' &&
        typeof address.local === 'string' &&
        typeof address.prefixlen === 'number'
      ) {
        held.push({ ip: address.local, prefix: address.prefixlen });
      }
    }
  }
  return held;
}

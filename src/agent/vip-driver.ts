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
  /** At agent start: removes what an earlier run of the agent left on the host (refusal rules). */
  cleanUp?(): Promise<void>;
}

function commandError(command: string, args: string[], error: unknown): Error {
  const stderr = String((error as { stderr?: string }).stderr ?? '').trim();
  return new Error(`${command} ${args.join(' ')} failed: ${stderr || (error as Error).message}`);
}

export interface IpCommandDriverOptions {
  ip?: string;
  arping?: string;
  iptables?: string;
  timeoutMs?: number;
  /**
   * After a VIP leaves this host, refuse the connections that still arrive for it (vip.refuse_moved).
   * Clients whose ARP cache still names this host keep sending here until the new holder's
   * announcement reaches them; without a rule their SYNs are dropped and each waits for its
   * connect retry (a second on Linux), with it they are refused at once and retry.
   */
  refuseMoved?: boolean;
  /** Where a failed refusal rule is reported: the VIP move itself succeeded. */
  warn?: (message: string) => void;
}

/** Marks Switchyard's rules in the nat table, so they are found and removed by their comment. */
const REFUSE_COMMENT = 'switchyard: VIP moved away, refuse stale clients';

/** iproute2, iputils-arping and iptables through execFile with argument arrays (never a shell). */
export class IpCommandDriver implements VipDriver {
  /** VIPs this agent put a refusal rule in place for (see startRefusing). */
  private readonly refusing = new Set<string>();

  constructor(private readonly options: IpCommandDriverOptions = {}) {}

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
    // A refusal rule left from when the VIP moved away would refuse its new clients here.
    if (this.refusing.has(ip)) await this.stopRefusing(ip);
    await this.exec(this.options.ip ?? 'ip', ['addr', 'add', `${ip}/${prefix}`, 'dev', iface]);
  }

  async remove(ip: string, prefix: number, iface: string): Promise<void> {
    // The rule goes in first: a SYN arriving between the address going and the rule coming would
    // be dropped, and that client would wait a whole SYN retransmit (seen: 1 s in 10 ms of gap).
    // While the address is still here the rule refuses new connections too, which is what a VIP
    // on its way out should do; established ones are not touched (NAT decides on the first packet).
    if (this.options.refuseMoved !== false) await this.startRefusing(ip);
    try {
      await this.exec(this.options.ip ?? 'ip', ['addr', 'del', `${ip}/${prefix}`, 'dev', iface]);
    } catch (error) {
      // Still here: it must keep serving.
      if (this.refusing.has(ip)) await this.stopRefusing(ip);
      throw error;
    }
  }

  /**
   * Only packets that still arrive for an address this host no longer has match: without the rule
   * the kernel drops them. They are redirected to port 1, where nothing listens, so the client
   * gets a reset; never to a real service, even if mysqld starts again meanwhile.
   */
  private iptables(operation: '-C' | '-I' | '-D', ip: string): Promise<string> {
    return this.exec(this.options.iptables ?? 'iptables', [
      '-t',
      'nat',
      operation,
      'PREROUTING',
      '-d',
      `${ip}/32`,
      '-p',
      'tcp',
      '-m',
      'comment',
      '--comment',
      REFUSE_COMMENT,
      '-j',
      'REDIRECT',
      '--to-ports',
      '1',
    ]);
  }

  private async startRefusing(ip: string): Promise<void> {
    try {
      const present = await this.iptables('-C', ip).then(
        () => true,
        () => false,
      );
      if (!present) await this.iptables('-I', ip);
      this.refusing.add(ip);
    } catch (error) {
      this.options.warn?.(
        `${ip} was removed, but stale clients will wait for their connect timeout instead of being refused: ${(error as Error).message}`,
      );
    }
  }

  /** Every refusal rule an earlier run left: a VIP this agent adds later must not be refused. */
  async cleanUp(): Promise<void> {
    if (this.options.refuseMoved === false) return;
    let rules: string;
    try {
      rules = await this.exec(this.options.iptables ?? 'iptables', [
        '-t',
        'nat',
        '-S',
        'PREROUTING',
      ]);
    } catch {
      return; // no iptables or no nat table: there can be no rule of ours either
    }
    for (const line of rules.split('\n')) {
      if (!line.includes(REFUSE_COMMENT)) continue;
      const ip = /-d (\d+\.\d+\.\d+\.\d+)\/32/.exec(line)?.[1];
      if (ip) await this.stopRefusing(ip);
    }
  }

  private async stopRefusing(ip: string): Promise<void> {
    this.refusing.delete(ip);
    // -D removes one copy; a rule inserted twice (two agents' lifetimes) needs two.
    for (let attempt = 0; attempt < 8; attempt++) {
      const present = await this.iptables('-C', ip).then(
        () => true,
        () => false,
      );
      if (!present) return;
      try {
        await this.iptables('-D', ip);
      } catch (error) {
        this.options.warn?.(
          `could not remove the refusal rule for ${ip}: ${(error as Error).message}`,
        );
        return;
      }
    }
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

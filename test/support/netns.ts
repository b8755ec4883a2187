import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import type { TestContext } from 'node:test';

const run = promisify(execFile);

export interface NetnsHost {
  name: string;
  namespace: string;
  address: string;
  /** Runs a command inside the namespace (argument array, no shell). */
  exec(
    command: string,
    args: string[],
    options?: { timeoutMs?: number },
  ): Promise<{ stdout: string; stderr: string }>;
  /** Prefix for spawn(): ["ip", "netns", "exec", namespace]. */
  wrap: string[];
}

export interface TestNetwork {
  bridge: string;
  /** Address of the test process on the bridge: "outside" every namespace host. */
  bridgeAddress: string;
  subnet: string;
  hosts: Map<string, NetnsHost>;
  host(name: string): NetnsHost;
  /** An address in the subnet for VIPs, e.g. vip(100) -> 10.213.7.100. */
  vip(lastOctet: number): string;
  destroy(): Promise<void>;
}

async function ip(args: string[]): Promise<string> {
  const { stdout } = await run('ip', args, { timeout: 10_000 });
  return stdout;
}

/** A 10.213.x /24 that no route on this machine uses yet (a leftover network would shadow it). */
async function unusedPrefix(seed: number): Promise<string> {
  const routes = await ip(['-4', 'route', 'show']);
  for (let step = 0; step < 200; step += 1) {
    const prefix = `10.213.${16 + ((seed + step) % 200)}`;
    if (!routes.includes(`${prefix}.`)) return prefix;
  }
  throw new Error(
    'no free 10.213.x.0/24 test subnet: leftover test bridges? (ip link show type bridge)',
  );
}

/**
 * Hosts with their own addresses on one machine: a bridge in the root namespace and one network
 * namespace per host, joined by veth pairs. Names carry a random tag so parallel runs do not
 * collide; everything is deleted on destroy() and, through t.after, when the test fails.
 */
export async function createTestNetwork(
  t: TestContext | undefined,
  hostNames: string[],
): Promise<TestNetwork> {
  const tag = randomBytes(3).toString('hex');
  const prefix = await unusedPrefix(parseInt(tag.slice(0, 2), 16));
  const bridge = `sybr${tag}`;
  const created: { namespaces: string[]; links: string[] } = { namespaces: [], links: [] };
  const destroy = async () => {
    for (const namespace of created.namespaces) {
      // Kill whatever still runs inside (mariadbd, agents) so the namespace really goes away.
      try {
        const { stdout } = await run('ip', ['netns', 'pids', namespace]);
        for (const pid of stdout.split('\n').filter(Boolean)) {
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch {
            // already gone
          }
        }
      } catch {
        // namespace already gone
      }
      await ip(['netns', 'del', namespace]).catch(() => undefined);
    }
    for (const link of created.links) await ip(['link', 'del', link]).catch(() => undefined);
    created.namespaces = [];
    created.links = [];
  };
  t?.after(destroy);
  try {
    await ip(['link', 'add', bridge, 'type', 'bridge']);
    created.links.push(bridge);
    await ip(['addr', 'add', `${prefix}.1/24`, 'dev', bridge]);
    await ip(['link', 'set', bridge, 'up']);
    const hosts = new Map<string, NetnsHost>();
    for (const [index, name] of hostNames.entries()) {
      const namespace = `sy${tag}-${name}`.slice(0, 30);
      const outside = `vsy${tag}${index}`;
      const inside = `vsy${tag}${index}p`;
      await ip(['netns', 'add', namespace]);
      created.namespaces.push(namespace);
      await ip(['link', 'add', outside, 'type', 'veth', 'peer', 'name', inside]);
      created.links.push(outside);
      await ip(['link', 'set', inside, 'netns', namespace]);
      await ip(['link', 'set', outside, 'master', bridge]);
      await ip(['link', 'set', outside, 'up']);
      const address = `${prefix}.${11 + index}`;
      const inNs = (args: string[]) => ip(['netns', 'exec', namespace, 'ip', ...args]);
      await inNs(['link', 'set', inside, 'name', 'eth0']);
      await inNs(['addr', 'add', `${address}/24`, 'dev', 'eth0']);
      await inNs(['link', 'set', 'eth0', 'up']);
      await inNs(['link', 'set', 'lo', 'up']);
      await inNs(['route', 'add', 'default', 'via', `${prefix}.1`]);
      const wrap = ['ip', 'netns', 'exec', namespace];
      hosts.set(name, {
        name,
        namespace,
        address,
        wrap,
        exec: (command, args, options) =>
          run('ip', ['netns', 'exec', namespace, command, ...args], {
            timeout: options?.timeoutMs ?? 30_000,
          }),
      });
    }
    return {
      bridge,
      bridgeAddress: `${prefix}.1`,
      subnet: `${prefix}.0/24`,
      hosts,
      host(name) {
        const found = hosts.get(name);
        if (!found) throw new Error(`no test host ${name}`);
        return found;
      },
      vip: (lastOctet) => `${prefix}.${lastOctet}`,
      destroy,
    };
  } catch (error) {
    await destroy();
    throw error;
  }
}

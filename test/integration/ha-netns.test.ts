import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import * as yaml from 'js-yaml';
import { readConfigFile, type LoadedConfig } from '../../src/config/load.js';
import { termOf } from '../../src/domain/fencing.js';
import { findFreePortRange } from '../../src/sandbox/ports.js';
import { MARIADB, requireBinaries, requireRoot } from '../support/binaries.js';
import { ETCD, startTestEtcd } from '../support/etcd.js';
import { managerProcess, type ManagerProcess } from '../support/ha-managers.js';
import { startNetnsCluster, type NetnsCluster } from '../support/netns-cluster.js';
import { waitFor } from '../support/sandbox.js';

const LEASE_MS = 2000;

function managerConfig(
  cluster: NetnsCluster,
  name: string,
  port: number,
  endpoints: string[],
): LoadedConfig {
  const raw = yaml.load(readFileSync(cluster.configFile, 'utf8')) as Record<string, any>;
  raw.listen = `127.0.0.1:${port}`;
  raw.state_dir = `state-${name}`;
  raw.ha = { etcd: { endpoints, prefix: '/switchyard-netns' }, lease: `${LEASE_MS / 1000}s` };
  const file = join(cluster.dir, `${name}.yml`);
  writeFileSync(file, yaml.dump(raw));
  const { config, problems } = readConfigFile(file);
  if (!config) throw new Error(JSON.stringify(problems));
  return config;
}

async function leaderOf(managers: ManagerProcess[]): Promise<ManagerProcess | undefined> {
  const leaders: ManagerProcess[] = [];
  for (const manager of managers)
    if (manager.alive() && (await manager.leader()) === 1) leaders.push(manager);
  assert.ok(
    leaders.length <= 1,
    `two managers claim to lead: ${leaders.map((manager) => manager.name).join(', ')}`,
  );
  return leaders[0];
}

/** VIP changes an agent applied (its log), with the sequence number (fencing token) they carried. */
function converged(
  cluster: NetnsCluster,
  host: string,
): Array<{ time: number; seq: number; added: string[]; removed: string[] }> {
  return readFileSync(join(cluster.dir, `agent-${host}.log`), 'utf8')
    .split('\n')
    .flatMap((line) => {
      try {
        const entry = JSON.parse(line) as {
          event?: string;
          time: number | string;
          seq?: number;
          ip?: string;
          added?: string[];
          removed?: string[];
        };
        const time = typeof entry.time === 'string' ? Date.parse(entry.time) : entry.time;
        if (typeof entry.seq !== 'number') return [];
        // The per-cycle exchange logs vip.converged; a move during a failover, vip.added/removed.
        if (entry.event === 'vip.converged')
          return [{ time, seq: entry.seq, added: entry.added ?? [], removed: entry.removed ?? [] }];
        if (entry.event === 'vip.added')
          return [{ time, seq: entry.seq, added: [entry.ip as string], removed: [] }];
        if (entry.event === 'vip.removed')
          return [{ time, seq: entry.seq, added: [], removed: [entry.ip as string] }];
        return [];
      } catch {
        return [];
      }
    });
}

function termOfLeader(manager: ManagerProcess, after: number): number {
  const gained = manager
    .journal()
    .filter(
      (entry) =>
        entry.event === 'ha.leadership_gained' && entry.at >= after && entry.term !== undefined,
    );
  assert.ok(gained.length > 0, `${manager.name} journaled its leadership`);
  return gained.at(-1)?.term as number;
}

test(
  'three managers with real agents: the new leader moves the writer VIP under its own term, and a paused old leader changes nothing',
  { timeout: 300_000 },
  async (t) => {
    if (
      !requireRoot(t, 'network namespaces') ||
      !requireBinaries(t, [['ip', 'iproute2'], ['arping', 'iputils-arping'], ...MARIADB, ...ETCD])
    )
      return;
    const etcd = await startTestEtcd(t);
    const cluster = await startNetnsCluster(t, { masters: 2, replicas: 1 });
    const ports = await findFreePortRange(3);
    const managers = ['m1', 'm2', 'm3'].map((name, index) =>
      managerProcess(t, name, managerConfig(cluster, name, ports + index, etcd.endpoints)),
    );
    const started = Date.now();
    for (const manager of managers) manager.start();
    const first = await waitFor('a leader', () => leaderOf(managers), 30_000, 100);
    await waitFor(
      'db1 to hold the writer VIP',
      async () =>
        converged(cluster, 'db1').some((change) => change.added.includes(cluster.writerVip)),
      30_000,
      200,
    );
    const firstTerm = termOfLeader(first, started);
    const firstMove = converged(cluster, 'db1').find((change) =>
      change.added.includes(cluster.writerVip),
    );
    assert.equal(
      termOf(firstMove?.seq as number),
      firstTerm,
      "the agent applied the VIP under the leader's term",
    );

    // kill -9 the leader and the writer's mariadbd: the next leader moves the VIP to db2 in its term.
    const killedAt = Date.now();
    await first.kill('SIGKILL');
    await cluster.instance('db1').kill();
    const second = await waitFor(
      'a new leader',
      () => leaderOf(managers.filter((manager) => manager !== first)),
      30_000,
      50,
    );
    console.log(
      `# ${second.name} leads ${Date.now() - killedAt} ms after kill -9 of ${first.name} (lease ${LEASE_MS} ms)`,
    );
    const secondTerm = termOfLeader(second, killedAt);
    assert.ok(secondTerm > firstTerm);
    const moved = await waitFor(
      'db2 to get the writer VIP',
      async () =>
        converged(cluster, 'db2').find(
          (change) => change.added.includes(cluster.writerVip) && change.time >= killedAt,
        ),
      60_000,
      200,
    ).catch((error: Error) => {
      const journal = second
        .journal()
        .slice(-25)
        .map(
          (entry) =>
            `${entry.phase} ${entry.event} ${entry.host ?? ''} t=${entry.term ?? '-'} ${entry.outcome ?? ''} ${entry.reason ?? ''} ${entry.detail ?? ''}`,
        );
      throw new Error(
        `${error.message}\n${second.name}'s journal:\n${journal.join('\n')}\nlog tail:\n${readFileSync(second.logFile, 'utf8').split('\n').slice(-15).join('\n')}`,
      );
    });
    assert.equal(termOf(moved.seq), secondTerm, "the writer VIP moved under the new leader's term");
    console.log(`# writer VIP on db2 ${moved.time - killedAt} ms after the kills`);

    // SIGSTOP the leader for 2 x lease, then SIGCONT: no agent applies anything in its term after.
    second.child?.kill('SIGSTOP');
    const pausedAt = Date.now();
    const third = await waitFor(
      'a leader while the old one is stopped',
      () => leaderOf(managers.filter((manager) => manager !== second && manager !== first)),
      30_000,
      50,
    );
    await new Promise((resolve) =>
      setTimeout(resolve, Math.max(0, pausedAt + 2 * LEASE_MS - Date.now())),
    );
    const resumedAt = Date.now();
    second.child?.kill('SIGCONT');
    await new Promise((resolve) => setTimeout(resolve, LEASE_MS + 1000));
    assert.equal(await second.leader(), 0, 'the resumed manager follows');
    assert.equal(await leaderOf(managers), third);
    for (const host of ['db1', 'db2', 'db3']) {
      if (host === 'db1') continue; // its mariadbd is dead, its agent still answers
      const late = converged(cluster, host).filter(
        (change) => change.time >= resumedAt && termOf(change.seq) <= secondTerm,
      );
      assert.deepEqual(late, [], `${host}'s agent applied nothing of an old term after the resume`);
    }
    const holders = await third.api('GET', '/status');
    assert.equal(holders.body.roles.writer[cluster.writerVip], 'db2', 'the writer stays on db2');
    console.log(
      `# after SIGCONT ${second.name} follows ${third.name}; no agent applied anything of term ${secondTerm} or older`,
    );
  },
);

/**
 * Fences as production breaks them (issue 22): on one cluster, with MariaDB's defaults and the
 * manager's default settings, in sequence: the writer's mariadbd hung 20 s, every process of the
 * writer's host paused 15 s, the writer cut off while every agent's local login is broken (a stale
 * password file), the writer cut off. Once with asynchronous and once with semi-synchronous
 * replication. Under writes every 10 ms through the VIP and from clients on the writer's own side,
 * with every host's read_only sampled over its local socket:
 *   - never two writable hosts;
 *   - no write acknowledged by the old writer after the new writer's promotion;
 *   - the hung and the isolated writer fail over while the fault lasts. The 5 s target is a speed
 *     figure, measured by bench/fences.ts and reported in the README; here it is printed, with
 *     the journal's timeline, so that a slow run explains itself.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { openConnection } from '../../src/mysql/connect.js';
import { requireBinaries, requireRoot } from '../support/binaries.js';
import { startDaemon, type RunningDaemon } from '../support/daemon.js';
import {
  NETNS_CLUSTER_BINARIES,
  startNetnsCluster,
  type NetnsCluster,
} from '../support/netns-cluster.js';
import { startLoad, startLocalWrites } from '../support/load.js';
import { waitFor } from '../support/sandbox.js';
import { cli, rejoinIfErrant, TRANSFER_BINARIES } from '../support/transfer-tests.js';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** The target for a hung or an isolated writer, with the shipped settings (bench/fences.ts). */
const FAILOVER_TARGET_MS = 5000;
/** How long after a paused host resumes its agent has to fence it (measured: tens of ms). */
const RESUME_WINDOW_MS = 1000;

/** Every pid in a host's network namespace (its mariadbd and its agent): a paused VM. */
async function namespacePids(cluster: NetnsCluster, host: string): Promise<number[]> {
  const { stdout } = await run('ip', ['netns', 'pids', cluster.nsHost(host).namespace]);
  return stdout
    .split('\n')
    .map((line) => Number(line.trim()))
    .filter((pid) => pid > 0);
}

function signal(pids: number[], name: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, name);
    } catch {
      // Gone already (the fence may have stopped it): nothing to resume.
    }
  }
}

interface Fault {
  /** For SWITCHYARD_FENCE_FAULTS=hang,pause,login,isolate (a developer's subset; CI runs all). */
  key: string;
  name: string;
  /** Starts the fault; returns how to end it. */
  inject(writer: string): Promise<() => Promise<void>>;
  /** How long the fault lasts before it is ended (the failover must come within it). */
  holdMs: number;
  /** A writer that fails over on its own: timed against the target and the lease. */
  timed?: boolean;
  /**
   * Every process of the host stopped and resumed at once: a client that connects in the first
   * milliseconds after the resume can be acknowledged by the server before its agent's fence
   * lands (asynchronous replication), and under semi-sync a commit that was waiting for an
   * acknowledgement when the host froze has outlived rpl_semi_sync_master_timeout by the time it
   * resumes: MariaDB then acknowledges it without a replica. Nothing inside a frozen host can act
   * before it resumes: the window is asserted and measured instead (docs/engine.md).
   */
  resumeWindow?: boolean;
}

async function scenario(t: TestContext, semiSync: boolean): Promise<void> {
  if (
    !requireRoot(t, 'network namespaces') ||
    !requireBinaries(t, [...NETNS_CLUSTER_BINARIES, ...TRANSFER_BINARIES])
  )
    return;
  const cluster = await startNetnsCluster(t, {
    masters: 2,
    replicas: 1,
    semiSync,
    preferFirst: false,
    transfers: true,
    // The shipped defaults (docs/monitor.md): what a user who changed nothing gets.
    monitor: { interval: '1s', connect_timeout: '1s', failures_before_down: 3, max_lag: '10s' },
    managerConfig: { backup: { dir: 'backups' } },
  });
  const running: RunningDaemon = await startDaemon(t, cluster.config);
  const { daemon } = running;
  const writerOf = () => daemon.status().roles.writer?.[cluster.writerVip] ?? null;
  const stateOf = (host: string) => daemon.status().hosts.find((entry) => entry.name === host);
  await waitFor('db1 to be the writer', async () => writerOf() === 'db1', 30_000);
  const { writes, sampler } = startLoad(t, cluster);
  await waitFor('writes', async () => writes.acked().length > 20, 20_000);
  const config = ['-c', cluster.configFile];
  const agentPassword = readFileSync(cluster.agentPasswordFile, 'utf8');

  /** When the new writer was made writable: the journal's set_read_only OFF on it, sent. */
  const promotedAt = (host: string, since: number): number | undefined =>
    daemon.journal
      .read()
      .find(
        (entry) =>
          entry.at >= since &&
          entry.host === host &&
          entry.event === 'mysql.set_read_only' &&
          entry.phase === 'before' &&
          (entry.inputs as { on?: boolean } | undefined)?.on === false,
      )?.at;

  /** The old writer back in service: restarted if its fence stopped it, rejoined if diverged. */
  const repair = async (host: string) => {
    await restore(host);
    // Settled before the next fault: every host ONLINE and replicating, as after an operator's
    // repair (a fault that lands mid-repair measures the repair's own timeouts instead).
    await waitFor(
      'every host ONLINE and replicating',
      async () => {
        if (!daemon.status().hosts.every((entry) => entry.state === 'ONLINE')) return false;
        for (const name of cluster.instances.keys()) {
          if (name === writerOf()) continue;
          const [status] = await cluster.instance(name).sql('SHOW SLAVE STATUS');
          if (status?.Slave_IO_Running !== 'Yes' || status?.Slave_SQL_Running !== 'Yes')
            return false;
        }
        return true;
      },
      60_000,
    );
    await sleep(2000);
  };
  const restore = async (host: string) => {
    // The agent's fence may stop the server a moment after the fault ends (its escalation):
    // started again whenever it is found stopped, until the manager sees it back.
    await waitFor(
      `${host} back and held`,
      async () => {
        if (!cluster.instance(host).isRunning()) await cluster.instance(host).start();
        return (
          ['AWAITING_RECOVERY', 'ONLINE'].includes(stateOf(host)?.state ?? '') &&
          daemon.status().hosts.find((entry) => entry.name === host)?.up === true
        );
      },
      60_000,
    );
    if (stateOf(host)?.state === 'ONLINE') return;
    // A commit the old writer made but could not replicate (semi-sync: never acknowledged to
    // its client) is errant there.
    await rejoinIfErrant(host, await daemon.engine.setOnline(host), {
      config,
      isOnline: () => stateOf(host)?.state === 'ONLINE',
      diagnostic: (message) => t.diagnostic(message),
    });
  };

  const faults: Fault[] = [
    {
      key: 'hang',
      name: "writer's mariadbd hung (SIGSTOP) for 20 s",
      holdMs: 20_000,
      timed: true,
      async inject(writer) {
        const pid = cluster.instance(writer).pid() as number;
        process.kill(pid, 'SIGSTOP');
        return async () => signal([pid], 'SIGCONT');
      },
    },
    {
      key: 'pause',
      name: "every process of the writer's host paused 15 s (a paused VM)",
      holdMs: 15_000,
      resumeWindow: true,
      async inject(writer) {
        const pids = await namespacePids(cluster, writer);
        signal(pids, 'SIGSTOP');
        return async () => signal(pids, 'SIGCONT');
      },
    },
    {
      key: 'login',
      name: "writer cut off while every agent's local MySQL login is broken (stale password file)",
      holdMs: 15_000,
      timed: true,
      async inject(writer) {
        writeFileSync(cluster.agentPasswordFile, 'stale-password\n', { mode: 0o600 });
        await cluster.nsHost(writer).exec('ip', ['link', 'set', 'eth0', 'down']);
        return async () => {
          await cluster.nsHost(writer).exec('ip', ['link', 'set', 'eth0', 'up']);
          writeFileSync(cluster.agentPasswordFile, agentPassword, { mode: 0o600 });
        };
      },
    },
    {
      key: 'isolate',
      name: 'writer cut off (link down)',
      holdMs: 15_000,
      timed: true,
      async inject(writer) {
        await cluster.nsHost(writer).exec('ip', ['link', 'set', 'eth0', 'down']);
        return async () =>
          cluster
            .nsHost(writer)
            .exec('ip', ['link', 'set', 'eth0', 'up'])
            .then(() => undefined);
      },
    },
  ];

  const only = process.env.SWITCHYARD_FENCE_FAULTS?.split(',');
  for (const fault of faults.filter((item) => !only || only.includes(item.key))) {
    const writer = writerOf() as string;
    const other = writer === 'db1' ? 'db2' : 'db1';
    // Clients on the writer's own side: they see it whatever happens to the network.
    const local = startLocalWrites(cluster, writer, 1_000_000_000 * (faults.indexOf(fault) + 1));
    await sleep(300);
    const faultAt = Date.now();
    const end = await fault.inject(writer);
    try {
      await waitFor(
        `${fault.name}: ${other} takes over`,
        async () => writerOf() === other,
        fault.holdMs,
      );
      await waitFor(
        `${fault.name}: a write through the VIP on ${other}`,
        async () => writes.firstAckOfWriteSentAfter(faultAt) !== undefined,
        fault.holdMs,
      );
      if (fault.key === 'login') {
        // The operator's view of the broken logins: config check --live asks every agent.
        const live = await cli(['config', 'check', '-c', cluster.configFile, '--live']);
        assert.match(
          live.stdout + live.stderr,
          new RegExp(
            `hosts\\.${other}\\.agent: its fence is NOT ready: cannot log in as switchyard`,
          ),
        );
        await waitFor(
          `switchyard_fence_ready{host="${other}"} 0`,
          async () =>
            /switchyard_fence_ready\{host="[^"]+",cluster="netns"\} 0/.test(
              await (await fetch(`${running.url}/metrics`)).text(),
            ),
          10_000,
        );
      }
    } finally {
      const remaining = faultAt + fault.holdMs - Date.now();
      if (remaining > 0) await sleep(remaining);
      await end();
    }
    const endedAt = Date.now();
    // After the fault ended: the old writer resumed (or was stopped by its fence) and must not
    // take a write. Give it the time a late acknowledgement would need to show up.
    await sleep(3000);
    const localAcks = await local.stop();
    const promoted = promotedAt(other, faultAt);
    assert.ok(promoted, `${fault.name}: no promotion of ${other} in the journal`);
    // Through the VIP after the promotion: the new writer's (a paused host may still have
    // acknowledged one in the instants before every one of its processes stopped).
    const firstWrite = writes.acked().find((record) => (record.ackedAt as number) >= promoted)
      ?.ackedAt as number;
    const lastOldAck = Math.max(0, ...localAcks);
    t.diagnostic(
      `${semiSync ? 'semi-sync' : 'async'} | ${fault.name}: ${other} promoted ${promoted - faultAt} ms after the fault, first write through the VIP ${firstWrite - faultAt} ms; old writer's last local acknowledgement ${lastOldAck ? `${lastOldAck - promoted} ms relative to the promotion` : 'none after the fault began'} (${localAcks.filter((at) => at > faultAt).length} after the fault began)`,
    );
    const timeline = daemon.journal
      .read()
      .filter(
        (entry) =>
          entry.at >= faultAt &&
          entry.at <= Math.max(promoted, firstWrite ?? 0) + 100 &&
          /^(failover|fence|writer|host\.state|mysql\.)/.test(entry.event),
      )
      .map(
        (entry) =>
          `  +${entry.at - faultAt} ms ${entry.event} ${entry.phase} ${entry.host ?? ''}: ${(entry.reason ?? entry.detail ?? '').slice(0, 240)}`,
      );
    const agentEvents = readFileSync(`${cluster.dir}/agent-${writer}.log`, 'utf8')
      .split('\n')
      .filter((line) => /"event":"(lease\.|fence\.)/.test(line))
      .map((line) => JSON.parse(line) as { time: string; event: string; detail?: string })
      .map((entry) => ({ ...entry, time: Date.parse(entry.time) }))
      .filter((entry) => entry.time >= faultAt)
      .map(
        (entry) =>
          `  agent ${writer} +${entry.time - faultAt} ms (resume +${entry.time - endedAt}) ${entry.event} ${(entry.detail ?? '').slice(0, 400)}`,
      );
    const timelineText = `timeline:\n${[...timeline, ...agentEvents].join('\n')}`;
    t.diagnostic(timelineText);
    const lateAcks = localAcks.filter((at) => at >= promoted);
    // A sample is stamped when it starts: one started up to its query timeout (500 ms) before the
    // resume is answered only after it.
    const inResumeWindow = (at: number) =>
      fault.resumeWindow === true && at >= endedAt - 600 && at < endedAt + RESUME_WINDOW_MS;
    if (fault.resumeWindow) {
      t.diagnostic(
        `${semiSync ? 'semi-sync' : 'async'} | ${fault.name}: ${lateAcks.length} write(s) acknowledged by ${writer} after the resume, the last ${lateAcks.length ? Math.max(...lateAcks) - endedAt : 0} ms after it`,
      );
      assert.ok(
        lateAcks.every((at) => inResumeWindow(at)),
        `${fault.name}: ${writer} acknowledged writes after ${other}'s promotion outside the first second after the resume: ${lateAcks.map((at) => at - endedAt).join(', ')} ms`,
      );
    } else
      assert.ok(
        lastOldAck < promoted,
        `${fault.name}: ${writer} acknowledged a write ${lastOldAck - promoted} ms after ${other} was promoted\n${timelineText}`,
      );
    if (fault.timed) {
      // The takeover came while the fault lasted (waited for above). How long it took depends
      // on the machine's load as much as on Switchyard (checks and fence requests that time out):
      // the figure is the bench's; it is printed here, flagged when over the target.
      const decided = daemon.journal
        .read()
        .find(
          (entry) =>
            entry.at >= faultAt && entry.event === 'failover.decided' && entry.host === other,
        )?.at;
      assert.ok(decided, `${fault.name}: no failover.decided for ${other}\n${timelineText}`);
      t.diagnostic(
        `${fault.name}: decided +${decided - faultAt} ms, promoted +${promoted - faultAt} ms (target ${FAILOVER_TARGET_MS} ms${promoted - faultAt > FAILOVER_TARGET_MS ? ': OVER, see the timeline' : ''})`,
      );
      assert.ok(firstWrite, `${fault.name}: no write acknowledged on ${other}\n${timelineText}`);
    }
    // A paused host resumes with read_only=OFF, as it was: until its agent's fence lands (tens
    // of milliseconds), the sampler sees two writable hosts. Outside that window, never.
    assert.deepEqual(
      sampler
        .splitBrainSamples()
        .filter((sample) => sample.at >= faultAt && !inResumeWindow(sample.at))
        .slice(0, 3),
      [],
      `${fault.name}: two writable hosts\n${timelineText}`,
    );
    await repair(writer);
  }

  await writes.stop();
  await sampler.stop();
  const writer = writerOf() as string;
  const survivor = await openConnection({
    socketPath: cluster.instance(writer).socket,
    user: 'root',
  });
  try {
    const missing = await writes.missingAcked(survivor);
    // Semi-sync: an acknowledged write is on a replica, so none may be lost. Asynchronous
    // replication loses what the writer acknowledged but had not sent when it stopped.
    if (semiSync) assert.deepEqual(missing, [], 'acknowledged writes lost under semi-sync');
    else t.diagnostic(`async: ${missing.length} acknowledged write(s) not on the final writer`);
  } finally {
    survivor.destroy();
  }
}

test(
  'fences are proved, asynchronous replication: hung, paused, broken login, isolated',
  { timeout: 600_000 },
  async (t) => {
    await scenario(t, false);
  },
);

test(
  'fences are proved, semi-synchronous replication: hung, paused, broken login, isolated',
  { timeout: 600_000 },
  async (t) => {
    await scenario(t, true);
  },
);

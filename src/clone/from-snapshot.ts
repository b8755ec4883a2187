import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { connectManager, discoverWriter } from '../checksum/hosts.js';
import type { LoadedConfig } from '../config/load.js';
import type { SnapshotInfo } from '../snapshot/types.js';
import { CloneRefused, pointAtWriter, type CloneDeps, type CloneResult } from './clone.js';
import { localHostControl } from './local-host.js';
import { streamCompressed } from './stream.js';

/**
 * Replication state of the host the snapshot came from must not travel: a target starting with
 * it would resume that host's replication before Switchyard sets the snapshot's position.
 */
const FOREIGN_REPLICATION_STATE =
  /^(master\.info|relay-log\.info|multi-master\.info|.*relay-bin\..*|.*relay-bin-.*)$/;

/**
 * Clones `to` from a filesystem snapshot (btrfs or lvm method): the snapshot directory (or its
 * `subdir`, where the datadir sits inside a subvolume) is streamed through tar and gzip into the
 * stopped target's datadir; InnoDB recovers it on start like after a power cut, and the GTID
 * recorded under the read lock is where replication resumes.
 */
export async function cloneFromSnapshot(
  config: LoadedConfig,
  from: string,
  snapshot: SnapshotInfo,
  to: string,
  deps: CloneDeps & { subdir?: string } = {},
): Promise<CloneResult> {
  if (from === to) throw new CloneRefused('the snapshot source and --to are the same host');
  const connect = deps.connect ?? connectManager(config);
  const writer = deps.writer ?? (await discoverWriter(config, connect));
  if (to === writer)
    throw new CloneRefused(`${to} is the writer; cloning over it would destroy the cluster's data`);
  if (!snapshot.gtidPosition)
    throw new CloneRefused(
      `snapshot ${snapshot.id} has no recorded GTID position; replication could not start from it safely`,
    );
  const target = (deps.hostControl ?? ((host: string) => localHostControl(config, host)))(to);
  const sourceDir = deps.subdir ? join(snapshot.path, deps.subdir) : snapshot.path;
  const started = Date.now();
  const action = randomUUID();
  deps.journal?.append({
    phase: 'before',
    event: 'clone.run',
    action,
    host: to,
    inputs: { from, to, writer, snapshot: snapshot.id, method: snapshot.method },
  });
  await target.stop();
  const aside = `${target.datadir}.pre-clone-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  if (existsSync(target.datadir)) renameSync(target.datadir, aside);
  mkdirSync(target.datadir, { recursive: true });
  let startedTarget = false;
  try {
    // --ignore-zeros: read to EOF instead of stopping at the end marker, so the stream is drained.
    const progress = await streamCompressed(
      { file: 'tar', args: ['-C', sourceDir, '-cf', '-', '.'] },
      { file: 'tar', args: ['-C', target.datadir, '--ignore-zeros', '-xf', '-'] },
      deps.onProgress,
    );
    for (const name of readdirSync(target.datadir))
      if (FOREIGN_REPLICATION_STATE.test(name)) rmSync(join(target.datadir, name), { force: true });
    await target.start();
    startedTarget = true;
    await pointAtWriter(config, connect, to, writer, snapshot.gtidPosition);
    rmSync(aside, { recursive: true, force: true });
    const result: CloneResult = {
      from,
      to,
      source: writer,
      gtidPosition: snapshot.gtidPosition,
      rawBytes: progress.rawBytes,
      compressedBytes: progress.compressedBytes,
      seconds: (Date.now() - started) / 1000,
    };
    deps.journal?.append({
      phase: 'after',
      event: 'clone.run',
      action,
      host: to,
      outcome: 'ok',
      detail: `replicating from ${writer} at ${snapshot.gtidPosition}`,
    });
    return result;
  } catch (error) {
    if (startedTarget) await target.stop().catch(() => undefined);
    const message = `clone of ${to} from snapshot ${snapshot.id} failed: ${(error as Error).message}. ${to} is left STOPPED; its previous datadir is kept at ${aside}`;
    deps.journal?.append({
      phase: 'after',
      event: 'clone.run',
      action,
      host: to,
      outcome: 'failed',
      detail: message,
    });
    throw new Error(message, { cause: error });
  }
}

import type { Etcd3 } from 'etcd3';
import type { ClusterState, ClusterStateStore } from '../domain/cluster-state.js';
import type { Logger } from '../log.js';
import { withTimeout } from './etcd-client.js';
import type { EtcdLeadership } from './etcd-leadership.js';

/** A state write refused by etcd: another manager leads now (or wrote the state since our read). */
export class FencedWriteError extends Error {
  override name = 'FencedWriteError';
}

export interface EtcdStateStoreOptions {
  client: Etcd3;
  cluster: string;
  leadership: EtcdLeadership;
  timeoutMs: number;
  log: Logger;
}

/**
 * The cluster state (roles, pins, the in-flight operation, the promotion point, host records,
 * mode) as one JSON value in etcd. Only the leader writes, and every write is a transaction that
 * succeeds only if the state key is still at the revision this manager last read or wrote AND
 * the cluster's term is still this manager's term. A deposed leader's write therefore fails; the
 * store then deposes it locally too, so it stops acting at once.
 *
 * Followers do not write (their saves are dropped: the leader's state is the truth); they read
 * the state every cycle for the read APIs, and the new leader reads it on winning, which also
 * sets the revision its first write is checked against.
 */
export class EtcdStateStore implements ClusterStateStore {
  /** mod_revision of the state key when this manager last read or wrote it ("0": absent). */
  private revision = '0';

  constructor(private readonly options: EtcdStateStoreOptions) {}

  describe(): string {
    return `etcd key ${this.options.leadership.stateKey}`;
  }

  async load(): Promise<ClusterState | undefined> {
    const answer = await withTimeout(
      this.options.client.get(this.options.leadership.stateKey).exec(),
      this.options.timeoutMs * 2,
      'read state',
    );
    const kv = answer.kvs[0];
    this.revision = kv ? kv.mod_revision : '0';
    if (!kv) return undefined;
    let state: Partial<ClusterState>;
    try {
      state = JSON.parse(kv.value.toString()) as Partial<ClusterState>;
    } catch (error) {
      throw new Error(
        `the state in etcd (${this.options.leadership.stateKey}) is not valid JSON: ${(error as Error).message}`,
        { cause: error },
      );
    }
    if (state.version !== 1 || typeof state.hosts !== 'object' || typeof state.roles !== 'object')
      throw new Error(
        `the state in etcd (${this.options.leadership.stateKey}) is not a Switchyard state (version 1 with hosts and roles)`,
      );
    if (state.cluster !== this.options.cluster)
      throw new Error(
        `the state in etcd (${this.options.leadership.stateKey}) belongs to cluster "${String(state.cluster)}", not "${this.options.cluster}"`,
      );
    return state as ClusterState;
  }

  async save(state: ClusterState): Promise<void> {
    const leadership = this.options.leadership;
    const term = leadership.term();
    if (term === undefined) return; // not the leader: the leader's copy is the one that counts
    const client = this.options.client;
    const key = leadership.stateKey;
    let result;
    try {
      result = await withTimeout(
        client
          .if(key, 'Mod', '==', this.revision)
          .and(leadership.termKey, 'Value', '==', String(term))
          .then(client.put(key).value(JSON.stringify(state)))
          .commit(),
        this.options.timeoutMs * 2,
        'write state',
      );
    } catch (error) {
      // Unknown outcome: the write may have landed, so our revision is unknown. Re-read it on
      // the next save rather than act on a guess; leadership still ends on its own when etcd
      // stays unreachable for the lease.
      await this.refreshRevision().catch(() => undefined);
      throw new Error(`could not write the state to etcd: ${(error as Error).message}`, {
        cause: error,
      });
    }
    if (!result.succeeded) {
      const reason = `state write for term ${term} refused by etcd (the term or the state changed since this manager's last read): another manager leads`;
      this.options.log.error({ event: 'ha.state_write_refused', term }, reason);
      leadership.depose(reason);
      throw new FencedWriteError(reason);
    }
    this.revision = result.header.revision;
  }

  private async refreshRevision(): Promise<void> {
    const answer = await withTimeout(
      this.options.client.get(this.options.leadership.stateKey).exec(),
      this.options.timeoutMs * 2,
      'read state revision',
    );
    this.revision = answer.kvs[0]?.mod_revision ?? '0';
  }
}

import { EventEmitter } from 'node:events';
import type { Etcd3, Lease } from 'etcd3';
import type { Leadership } from '../leadership/leadership.js';
import type { Logger } from '../log.js';
import { clusterKeys, withTimeout } from './etcd-client.js';
import { nextTerm } from '../domain/fencing.js';

/** What the election key holds: who leads, in which term, and where to reach it. */
export interface LeaderInfo {
  id: string;
  url: string;
  term: number;
  since: number;
}

export interface LeadershipChange {
  leading: boolean;
  term?: number;
  reason: string;
}

export interface EtcdLeadershipOptions {
  client: Etcd3;
  prefix: string;
  cluster: string;
  /** ha.lease in ms (whole seconds). */
  leaseMs: number;
  /** ha.etcd.timeout: one etcd call's deadline. */
  timeoutMs: number;
  /** This manager: a unique id and the URL followers send clients to. */
  id: string;
  url: string;
  log: Logger;
  now?: () => number;
}

/**
 * Leadership of one cluster through etcd: this manager holds a lease, renewed every quarter of
 * `lease`, and leads while the election key (bound to that lease) names it. It may act only while
 * it knows the lease is valid: until `lease` (less a margin) after the send time of the last
 * renewal etcd confirmed. etcd counts the lease from when it received that renewal, later than
 * the send time, so this manager stops acting before etcd can give the key to another one.
 *
 * Winning an election increments the cluster's term by compare-and-swap in the same etcd
 * transaction that creates the election key: every term has exactly one winner, terms only grow,
 * and the term is the fencing token (src/domain/fencing.ts). A lost term is never resumed: a manager
 * that lost its lease or key campaigns again and, if it wins, leads a new term.
 *
 * Events: 'change' (LeadershipChange) when this manager starts or stops leading.
 */
export class EtcdLeadership extends EventEmitter implements Leadership {
  private readonly keys: { leader: string; term: string; state: string };
  private readonly now: () => number;
  private readonly tickMs: number;
  private readonly marginMs: number;
  private lease?: Lease;
  /** Manager clock: the lease is certainly valid on etcd until this moment. */
  private leaseValidUntil = 0;
  private leading?: { term: number; since: number };
  private known?: LeaderInfo;
  private etcdError?: string;
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopped = false;
  /** Changes of leader seen by this manager (itself or others), for switchyard_leader_changes_total. */
  changes = 0;

  constructor(private readonly options: EtcdLeadershipOptions) {
    super();
    this.keys = clusterKeys(options.prefix, options.cluster);
    this.now = options.now ?? Date.now;
    this.tickMs = Math.min(1000, Math.floor(options.leaseMs / 4));
    this.marginMs = Math.max(200, Math.floor(options.leaseMs / 10));
  }

  get termKey(): string {
    return this.keys.term;
  }

  get stateKey(): string {
    return this.keys.state;
  }

  mayAct(): boolean {
    return this.leading !== undefined && this.now() < this.leaseValidUntil;
  }

  term(): number | undefined {
    return this.mayAct() ? this.leading?.term : undefined;
  }

  /** The leader as last read from etcd (this manager too); undefined when none or unknown. */
  leader(): LeaderInfo | undefined {
    return this.known;
  }

  describe(): string {
    if (this.mayAct())
      return `leader of term ${this.leading?.term} (${this.options.id}, etcd lease ${this.options.leaseMs / 1000}s)`;
    if (this.etcdError) return `follower: etcd unreachable (${this.etcdError})`;
    return this.known
      ? `follower of ${this.known.id} (${this.known.url}, term ${this.known.term})`
      : 'follower: no leader elected yet';
  }

  /** Starts the renew/campaign loop; the first round runs before this resolves. */
  async start(): Promise<void> {
    await this.round();
    this.schedule();
  }

  /** Stops the loop and, when leading, revokes the lease so another manager takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
    const lease = this.lease;
    this.lose('manager stopping', false);
    if (lease)
      await withTimeout(lease.revoke(), this.options.timeoutMs * 2, 'revoke lease').catch(
        () => undefined,
      );
  }

  /**
   * A write this manager made as leader was refused (its term is over): stop acting now, drop the
   * lease (and with it the election key, if still ours), and campaign again later.
   */
  depose(reason: string): void {
    this.lose(reason);
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.round().finally(() => this.schedule());
    }, this.tickMs);
  }

  private async round(): Promise<void> {
    const timeout = this.options.timeoutMs * 2;
    try {
      await this.renew(timeout);
      const current = await this.readLeader(timeout);
      if (this.leading && (current?.id !== this.options.id || current.term !== this.leading.term)) {
        this.lose(
          current
            ? `the election key names ${current.id} (term ${current.term})`
            : 'the election key is gone',
        );
      }
      if (!this.leading && current?.id === this.options.id) {
        // Our own key without our knowing we won: a campaign whose answer was lost (timeout).
        // Never act on it; free it (revoking the lease deletes the key) and campaign again.
        this.lose(
          'the election key names this manager from a campaign whose outcome was not seen: released',
        );
      } else if (!this.leading && !current && !this.stopped) await this.campaign(timeout);
      else this.noteLeader(current);
      if (this.etcdError) {
        this.options.log.info({ event: 'ha.etcd_recovered' }, 'etcd reachable again');
        this.etcdError = undefined;
      }
    } catch (error) {
      const message = (error as Error).message;
      if (this.etcdError === undefined)
        this.options.log.warn(
          { event: 'ha.etcd_unreachable', err: message },
          'etcd unreachable: leadership cannot be renewed',
        );
      this.etcdError = message;
    }
    if (this.leading && this.now() >= this.leaseValidUntil)
      this.lose(
        `lease not renewed for ${this.options.leaseMs - this.marginMs} ms (${this.etcdError ?? 'renewal late'})`,
      );
  }

  /** Keeps the lease alive (a new one when there is none or etcd forgot it). */
  private async renew(timeout: number): Promise<void> {
    const sentAt = this.now();
    if (this.lease) {
      const answer = await withTimeout(this.lease.keepaliveOnce(), timeout, 'lease keepalive');
      if (Number(answer.TTL) > 0) {
        this.leaseValidUntil = sentAt + this.options.leaseMs - this.marginMs;
        return;
      }
      this.lose('etcd says the lease expired');
    }
    const lease = this.options.client.lease(this.options.leaseMs / 1000, { autoKeepAlive: false });
    try {
      await withTimeout(lease.grant(), timeout, 'lease grant');
    } catch (error) {
      void lease.revoke().catch(() => undefined);
      throw error;
    }
    this.lease = lease;
    this.leaseValidUntil = sentAt + this.options.leaseMs - this.marginMs;
  }

  private async readLeader(timeout: number): Promise<LeaderInfo | undefined> {
    const text = await withTimeout(
      this.options.client.get(this.keys.leader).string(),
      timeout,
      'read election key',
    );
    if (text === null) return undefined;
    try {
      return JSON.parse(text) as LeaderInfo;
    } catch {
      return { id: 'unknown', url: '', term: 0, since: 0 };
    }
  }

  /** One transaction: create the election key (if absent) bound to our lease and bump the term. */
  private async campaign(timeout: number): Promise<void> {
    const client = this.options.client;
    const lease = this.lease;
    if (!lease || this.now() >= this.leaseValidUntil) return;
    const termRead = await withTimeout(client.get(this.keys.term).exec(), timeout, 'read term');
    const kv = termRead.kvs[0];
    const previous = kv ? Number(kv.value.toString()) : 0;
    const modRevision = kv ? kv.mod_revision : '0';
    const term = nextTerm(Number.isFinite(previous) ? previous : 0, this.now());
    const since = this.now();
    const info: LeaderInfo = { id: this.options.id, url: this.options.url, term, since };
    const leaseId = await lease.grant();
    const result = await withTimeout(
      client
        .if(this.keys.leader, 'Create', '==', 0)
        .and(this.keys.term, 'Mod', '==', modRevision)
        .then(
          client.put(this.keys.leader).value(JSON.stringify(info)).lease(leaseId),
          client.put(this.keys.term).value(String(term)),
        )
        .commit(),
      timeout,
      'campaign',
    );
    if (!result.succeeded) return; // another manager won this round; the next round reads who
    this.leading = { term, since };
    this.noteLeader(info);
    this.options.log.warn(
      { event: 'ha.leader_elected', term, id: this.options.id },
      `this manager leads term ${term}`,
    );
    this.emit('change', {
      leading: true,
      term,
      reason: `won the election for term ${term}`,
    } satisfies LeadershipChange);
  }

  private noteLeader(current: LeaderInfo | undefined): void {
    if (current && (this.known?.id !== current.id || this.known.term !== current.term))
      this.changes += 1;
    this.known = current;
  }

  /**
   * Stops leading. The lease goes with the term (revoked when etcd can be reached, otherwise it
   * expires unrenewed), so the election key is freed and a later win is a new term.
   */
  private lose(reason: string, revoke = true): void {
    const lease = this.lease;
    this.lease = undefined;
    this.leaseValidUntil = 0;
    if (revoke) void lease?.revoke().catch(() => undefined);
    if (!this.leading) return;
    const term = this.leading.term;
    this.leading = undefined;
    this.options.log.warn(
      { event: 'ha.leadership_lost', term, reason },
      `this manager no longer leads (term ${term}): ${reason}`,
    );
    this.emit('change', { leading: false, term, reason } satisfies LeadershipChange);
  }
}

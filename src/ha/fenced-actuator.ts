import type { Etcd3 } from 'etcd3';
import {
  ActionError,
  type Actuator,
  type AgentTransport,
  type FenceResult,
  type PlannedStep,
  type VipCallBound,
} from '../actuator/types.js';
import { withTimeout } from './etcd-client.js';
import type { EtcdLeadership } from './etcd-leadership.js';

/**
 * Several managers: before each step that changes a MySQL server or a VIP, the leader checks in
 * etcd (a linearizable read) that the cluster's term is still its own. A leader paused between
 * two steps (GC, SIGSTOP) and deposed meanwhile finds a newer term there and stops: the step is
 * not run, and the manager stops acting. Agent requests are also fenced by the agents themselves
 * (term-based sequence numbers); MySQL servers cannot check a token, so this check is their fence.
 */
export class FencedActuator implements Actuator {
  constructor(
    private readonly inner: Actuator & { agents: AgentTransport },
    private readonly leadership: EtcdLeadership,
    private readonly client: Etcd3,
    private readonly timeoutMs: number,
  ) {}

  get dryRun(): boolean {
    return this.inner.dryRun;
  }
  get steps(): PlannedStep[] {
    return this.inner.steps;
  }
  get agents(): AgentTransport {
    return this.inner.agents;
  }

  async check(what: string): Promise<void> {
    const term = this.leadership.term();
    if (term === undefined)
      throw new ActionError(
        `${what} not run: this manager no longer leads (its lease is not known valid)`,
      );
    let current: string | null;
    try {
      current = await withTimeout(
        this.client.get(this.leadership.termKey).string(),
        this.timeoutMs * 2,
        'read term',
      );
    } catch (error) {
      throw new ActionError(
        `${what} not run: cannot confirm the leader term ${term} in etcd (${(error as Error).message})`,
      );
    }
    if (current !== String(term)) {
      const reason = `the cluster's term is ${current ?? 'unset'} in etcd, not this manager's ${term}`;
      this.leadership.depose(reason);
      throw new ActionError(`${what} not run: ${reason} (fenced)`);
    }
  }

  private async fenced<T>(what: string, work: () => Promise<T>): Promise<T> {
    if (!this.inner.dryRun) await this.check(what);
    return work();
  }

  setReadOnly(host: string, on: boolean): Promise<void> {
    return this.fenced(`read_only=${on ? 'ON' : 'OFF'} on ${host}`, () =>
      this.inner.setReadOnly(host, on),
    );
  }
  fence(host: string): Promise<FenceResult> {
    return this.fenced(`fencing ${host}`, () => this.inner.fence(host));
  }
  waitForGtid(host: string, position: string, timeoutMs: number): Promise<boolean> {
    return this.inner.waitForGtid(host, position, timeoutMs); // a read: nothing to fence
  }
  repoint(replica: string, newMaster: string): Promise<void> {
    return this.fenced(`repointing ${replica}`, () => this.inner.repoint(replica, newMaster));
  }
  stopReplication(host: string, options?: { ioInBackground?: boolean }): Promise<void> {
    return this.fenced(`STOP SLAVE on ${host}`, () => this.inner.stopReplication(host, options));
  }
  stopIoThread(host: string): Promise<void> {
    return this.fenced(`STOP SLAVE IO_THREAD on ${host}`, () => this.inner.stopIoThread(host));
  }
  startIoThread(host: string): Promise<void> {
    return this.fenced(`START SLAVE IO_THREAD on ${host}`, () => this.inner.startIoThread(host));
  }
  resumeReplication(host: string): Promise<void> {
    return this.fenced(`START SLAVE on ${host}`, () => this.inner.resumeReplication(host));
  }
  startReplication(host: string): Promise<void> {
    return this.fenced(`START SLAVE on ${host}`, () => this.inner.startReplication(host));
  }
  addVip(host: string, ip: string, bound?: VipCallBound): Promise<void> {
    return this.fenced(`adding ${ip} on ${host}`, () => this.inner.addVip(host, ip, bound));
  }
  removeVip(host: string, ip: string, bound?: VipCallBound): Promise<void> {
    return this.fenced(`removing ${ip} from ${host}`, () => this.inner.removeVip(host, ip, bound));
  }
  listVips(host: string): Promise<string[]> {
    return this.inner.listVips(host);
  }
}

import type { Actuator, FenceResult, PlannedStep } from '../actuator/types.js';
import type { Logger } from '../log.js';

/**
 * Without `actuator.vip` (the sandbox, or a cluster whose clients find the writer another way)
 * role IPs are bookkeeping: assigned, exported and shown, but no interface is touched. This
 * wrapper makes that explicit instead of letting every VIP move fail for want of an agent.
 */
export class BookkeepingVips implements Actuator {
  constructor(
    private readonly inner: Actuator,
    private readonly log: Logger,
  ) {}

  get dryRun(): boolean {
    return this.inner.dryRun;
  }
  get steps(): PlannedStep[] {
    return this.inner.steps;
  }
  setReadOnly(host: string, on: boolean): Promise<void> {
    return this.inner.setReadOnly(host, on);
  }
  fence(host: string): Promise<FenceResult> {
    return this.inner.fence(host);
  }
  waitForGtid(host: string, position: string, timeoutMs: number): Promise<boolean> {
    return this.inner.waitForGtid(host, position, timeoutMs);
  }
  repoint(replica: string, newMaster: string): Promise<void> {
    return this.inner.repoint(replica, newMaster);
  }
  stopReplication(host: string): Promise<void> {
    return this.inner.stopReplication(host);
  }
  startReplication(host: string): Promise<void> {
    return this.inner.startReplication(host);
  }
  async addVip(host: string, ip: string): Promise<void> {
    this.inner.steps.push({ action: 'vip.add', host, description: `${ip} assigned to ${host} (bookkeeping only: actuator.vip is not configured)` });
    this.log.info({ event: 'vip.bookkeeping', host, ip, change: 'add' }, 'role IP assigned (no interface change)');
  }
  async removeVip(host: string, ip: string): Promise<void> {
    this.inner.steps.push({ action: 'vip.remove', host, description: `${ip} unassigned from ${host} (bookkeeping only)` });
    this.log.info({ event: 'vip.bookkeeping', host, ip, change: 'remove' }, 'role IP unassigned (no interface change)');
  }
  async listVips(): Promise<string[]> {
    return [];
  }
}

import type { Logger } from '../log.js';
import type { StepRecorder } from './recorder.js';
import type { ReleaseAnswer, SyncAnswer, SyncRequest } from '../domain/agent-exchange.js';
import type { AgentTransport, VipActuator } from './types.js';

/**
 * Without `actuator.vip` (the sandbox, or a cluster whose clients find the writer another way)
 * role IPs are bookkeeping: assigned, exported and shown, but no interface is touched. Each move
 * is still a step (shown in plans) and a log line, instead of failing for want of an agent.
 */
export class BookkeepingVips implements VipActuator, AgentTransport {
  private seq = 0;
  constructor(private readonly options: { recorder: StepRecorder; logger?: Logger | undefined }) {}

  async addVip(host: string, ip: string): Promise<void> {
    this.options.recorder.steps.push({
      action: 'vip.add',
      host,
      description: `${ip} assigned to ${host} (bookkeeping only: actuator.vip is not configured)`,
    });
    this.options.logger?.info(
      { event: 'vip.bookkeeping', host, ip, change: 'add' },
      'role IP assigned (no interface change)',
    );
  }

  async removeVip(host: string, ip: string): Promise<void> {
    this.options.recorder.steps.push({
      action: 'vip.remove',
      host,
      description: `${ip} unassigned from ${host} (bookkeeping only)`,
    });
    this.options.logger?.info(
      { event: 'vip.bookkeeping', host, ip, change: 'remove' },
      'role IP unassigned (no interface change)',
    );
  }

  async listVips(): Promise<string[]> {
    return [];
  }

  nextSeq(): number {
    this.seq += 1;
    return this.seq;
  }

  agentUrl(): string | undefined {
    return undefined;
  }

  /** Nothing to touch: the host "holds" exactly its desired set. */
  async sync(_host: string, request: SyncRequest): Promise<SyncAnswer> {
    return {
      seq: request.seq,
      held: [...request.vips],
      added: [],
      removed: [],
      withheld: [],
      contacts: {},
    };
  }

  async releaseLease(): Promise<ReleaseAnswer> {
    return { fenced: false, how: 'unproved', detail: 'no agent: bookkeeping only, nothing fenced' };
  }
}

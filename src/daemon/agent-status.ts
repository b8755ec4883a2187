import type { AgentExchange } from '../actuator/agent-exchange.js';
import type { AgentStatus } from '../api/status-routes.js';
import { peerProtocol } from '../domain/protocol.js';

/** One host's agent as `show` and GET /api/v1/status report it: the last exchange, its probe and lease. */
export function agentStatus(agents: AgentExchange, host: string): AgentStatus | undefined {
  if (!agents.hasAgent(host)) return undefined;
  const report = agents.report(host);
  const answer = report?.answer;
  const up = report !== undefined && report.error === undefined && answer !== undefined;
  const now = Date.now();
  return {
    up,
    version: answer?.version,
    protocol: answer ? peerProtocol(answer.protocol) : undefined,
    held: up ? answer?.held : undefined,
    error: report ? report.error : 'no exchange yet',
    probe:
      answer?.probe && report?.answeredAt !== undefined
        ? {
            target: answer.probe.target,
            ok: answer.probe.ok,
            detail: answer.probe.detail,
            ageMs: now - (report.answeredAt - answer.probe.started_ago_ms),
          }
        : undefined,
    lease: answer?.lease
      ? {
          holding: answer.lease.holding,
          lapsed: answer.lease.lapsed,
          fenced: answer.lease.fenced,
          reached: answer.lease.reached,
        }
      : undefined,
  };
}

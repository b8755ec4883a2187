import { isIP } from 'node:net';
import express, { type Response } from 'express';
import { z } from 'zod';
import { HttpError } from '../api/errors.js';
import type { ReleaseAnswer, SyncAnswer } from '../domain/agent-exchange.js';
import { PROTOCOL_WITHOUT_FIELD, peerProtocol, protocolMismatch } from '../domain/protocol.js';
import type { Logger } from '../log.js';
import { switchyardVersion } from '../version.js';
import type { AgentConfig } from './config.js';
import type { ExchangeRolesStore } from './health.js';
import type { HostFence } from './host-fence.js';
import { route } from './http.js';
import type { LeaseKeeper } from './lease.js';
import { voterProblem, writerProblem } from './peers.js';
import type { Mutex, SequenceGuard } from './mutex.js';
import type { VipDriver } from './vip-driver.js';
import type { WriterProbe } from './writer-probe.js';

const ipv4 = z.string().refine((text) => isIP(text) === 4, { message: 'must be an IPv4 address' });
const hostName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/);

export const syncBody = z.strictObject({
  /** The manager's exchange protocol; absent from managers built before the field (protocol 1). */
  protocol: z.number().int().min(1).max(9999).optional(),
  seq: z.number().int().nonnegative(),
  host: hostName,
  interface: z.string().min(1).optional(),
  prefix: z.number().int().min(8).max(32).default(24),
  /** The complete set of this host's VIPs: what is missing is added, what is not listed is removed. */
  vips: z.array(ipv4),
  interval_ms: z.number().int().min(50).max(60_000),
  /** The writer's MySQL port, which this agent probes from its side (absent on the writer). */
  writer: z
    .strictObject({
      host: hostName,
      address: z.string().min(1),
      port: z.number().int().min(1).max(65535),
      timeout_ms: z.number().int().min(50).max(60_000),
    })
    .optional(),
  /** Only for the writer's agent: its lease. */
  lease: z
    .strictObject({
      duration_ms: z.number().int().min(500).max(600_000),
      voters: z.array(z.strictObject({ host: hostName, url: z.string().url() })),
      managers: z.number().int().min(1).max(9),
      writer_vips: z.array(ipv4),
    })
    .optional(),
  /** Every role this host holds now (for /health/writer and /health/reader). */
  roles: z.array(z.string().min(1).max(64)).max(64).optional(),
  /** Which of them is the writer's. */
  writer_role: z.string().min(1).max(64).optional(),
  /** The manager's monitor.max_lag: /health/reader answers 503 above it. */
  max_lag_ms: z.number().int().nonnegative().max(86_400_000).optional(),
});
export type SyncBody = z.output<typeof syncBody>;

export interface SyncDeps {
  config: AgentConfig;
  driver: VipDriver;
  lock: Mutex;
  sequence: SequenceGuard;
  probe: WriterProbe;
  lease: LeaseKeeper;
  fence: HostFence;
  exchangeRoles: ExchangeRolesStore;
  log: Logger;
  /** The exchange protocol this agent speaks (src/domain/protocol.ts). */
  protocol: number;
  parse<T>(schema: z.ZodType<T>, body: unknown): T;
  refuse(response: Response, status: number, code: string, detail: string): never;
  /** Announces an added VIP after the reply (gratuitous ARP takes about a second). */
  announceAfter(response: Response, ip: string, iface: string): void;
  /** The address of a manager whose exchange was accepted (it gets the priority budgets). */
  noteManager?(address: string | undefined): void;
}

/**
 * The manager's per-cycle exchange with this agent (POST /api/v1/sync) and the lease's
 * agent-to-agent endpoints. Declarative: the manager sends the whole set of VIPs this host must
 * hold, and the agent converges (adds what is missing, removes any of its own VIPs not in the
 * set) and answers with what it holds, what it sees of the writer, and the lease.
 */
export function createSyncRouter(deps: SyncDeps): express.Router {
  const router = express.Router();
  const contacts = new Map<string, number>();

  router.post(
    '/sync',
    route(async (request, response) => {
      const body = deps.parse(syncBody, request.body);
      // First of all: a manager too far apart may mean something else by any field, so nothing
      // of its request is applied (no VIP, no lease, no contact counted).
      const mismatch = protocolMismatch('agent', deps.protocol, peerProtocol(body.protocol));
      if (mismatch) {
        deps.log.warn(
          { event: 'agent.protocol_mismatch', manager_protocol: peerProtocol(body.protocol) },
          mismatch,
        );
        deps.refuse(response, 409, 'protocol_mismatch', mismatch);
      }
      // Without a "vip" section (a cluster routed by health checks or hooks) the exchange still
      // carries the lease, the probe and the roles; only a request for VIPs is refused.
      const vip = deps.config.vip;
      if (!vip && (body.vips.length > 0 || (body.lease?.writer_vips.length ?? 0) > 0))
        deps.refuse(
          response,
          409,
          'not_configured',
          'this agent has no "vip" section in its config, so it holds no VIPs',
        );
      const vipConfig: NonNullable<AgentConfig['vip']> = vip ?? {
        interface: '',
        ips: [],
        refuse_moved: false,
      };
      if (vip && body.interface !== undefined && body.interface !== vipConfig.interface) {
        deps.refuse(
          response,
          403,
          'interface_not_allowed',
          `interface "${body.interface}" is not this agent's VIP interface ("${vipConfig.interface}")`,
        );
      }
      const foreign = [...body.vips, ...(body.lease?.writer_vips ?? [])].filter(
        (ip) => !vipConfig.ips.includes(ip),
      );
      if (foreign.length > 0)
        deps.refuse(
          response,
          403,
          'ip_not_allowed',
          `${foreign.join(', ')} not among this agent's VIPs (${vipConfig.ips.join(', ')})`,
        );

      // The agent sends its token to every voter and probes the writer: only peers its own file names.
      const unknownPeers = [
        ...(body.lease?.voters ?? []).map((voter) =>
          voterProblem(deps.config.peers, voter.host, voter.url),
        ),
        body.writer && writerProblem(deps.config.peers, body.writer.host, body.writer.address),
      ].filter((problem): problem is string => problem !== undefined);
      if (unknownPeers.length > 0)
        deps.refuse(response, 403, 'peer_not_allowed', unknownPeers.join('; '));

      // A stale request (a deposed leader's, or one overtaken by a newer change) must not count as
      // the manager's contact nor reconfigure the lease and probe: refuse it before anything else.
      const early = deps.sequence.refusal(body.seq);
      if (early) deps.refuse(response, 409, early.code, early.detail);
      deps.lease.managerContact();
      deps.noteManager?.(request.socket.remoteAddress);
      deps.lease.configure(
        body.lease
          ? {
              self: body.host,
              durationMs: body.lease.duration_ms,
              intervalMs: body.interval_ms,
              voters: body.lease.voters,
              managers: body.lease.managers,
              writerVips: body.lease.writer_vips,
            }
          : undefined,
      );
      deps.probe.configure(
        body.writer
          ? { host: body.writer.host, address: body.writer.address, port: body.writer.port }
          : undefined,
        body.interval_ms,
        body.writer?.timeout_ms ?? 1000,
      );

      const lease = deps.lease.status();
      const writerVips = new Set(body.lease?.writer_vips ?? []);
      const withheld =
        lease.lapsed && body.lease ? body.vips.filter((ip) => writerVips.has(ip)) : [];
      const desired = new Set(body.vips.filter((ip) => !withheld.includes(ip)));

      const outcome = await deps.lock.run(async () => {
        const refusal = deps.sequence.admit(body.seq);
        if (refusal) deps.refuse(response, 409, refusal.code, refusal.detail);
        const held = vip
          ? (await deps.driver.list(vipConfig.interface)).filter((address) =>
              vipConfig.ips.includes(address.ip),
            )
          : [];
        const added: string[] = [];
        const removed: string[] = [];
        const errors: string[] = [];
        for (const address of held) {
          if (desired.has(address.ip)) continue;
          try {
            await deps.driver.remove(address.ip, address.prefix, vipConfig.interface);
            removed.push(address.ip);
          } catch (error) {
            errors.push(`remove ${address.ip}: ${(error as Error).message}`);
          }
        }
        for (const ip of desired) {
          if (held.some((address) => address.ip === ip)) continue;
          try {
            await deps.driver.add(ip, body.prefix, vipConfig.interface);
            added.push(ip);
          } catch (error) {
            errors.push(`add ${ip}: ${(error as Error).message}`);
          }
        }
        // Listed again only after a change, to verify it; an exchange that changed nothing (almost
        // every cycle) costs one `ip` call, not two.
        const after =
          added.length + removed.length + errors.length === 0
            ? held.map((address) => address.ip)
            : (await deps.driver.list(vipConfig.interface))
                .filter((address) => vipConfig.ips.includes(address.ip))
                .map((address) => address.ip);
        return { added, removed, errors, after };
      });
      // Only from an exchange the sequence admitted: a stale one must not change what the health
      // endpoints answer.
      deps.exchangeRoles.note({
        roles: body.roles ?? [],
        writerRole: body.writer_role,
        maxLagMs: body.max_lag_ms,
      });
      if (outcome.added.length > 0 || outcome.removed.length > 0) {
        deps.log.info(
          {
            event: 'vip.converged',
            added: outcome.added,
            removed: outcome.removed,
            withheld,
            seq: body.seq,
          },
          "VIPs converged to the manager's set",
        );
      }
      if (outcome.errors.length > 0)
        throw new HttpError(500, 'not_applied', outcome.errors.join('; '));
      for (const ip of outcome.added) deps.announceAfter(response, ip, vipConfig.interface);

      const probe = deps.probe.latest();
      const readiness = deps.fence.latestReadiness();
      const fence = deps.lease.fenceStatus();
      const now = Date.now();
      const answer: SyncAnswer = {
        // A build speaking the protocol from before the field existed sends neither (test setting).
        ...(deps.protocol > PROTOCOL_WITHOUT_FIELD
          ? { protocol: deps.protocol, version: switchyardVersion() }
          : {}),
        seq: body.seq,
        held: outcome.after,
        added: outcome.added,
        removed: outcome.removed,
        withheld,
        probe: probe
          ? {
              target: probe.target,
              ok: probe.ok,
              refused: probe.refused,
              detail: probe.detail,
              started_ago_ms: now - probe.startedAt,
            }
          : undefined,
        contacts: Object.fromEntries([...contacts].map(([host, at]) => [host, now - at])),
        lease: body.lease
          ? {
              holding: lease.holding,
              lapsed: lease.lapsed,
              fenced: lease.fenced,
              quorum_ago_ms: lease.quorumAgoMs,
              reached: lease.reached,
            }
          : undefined,
        fence_ready: readiness && {
          ready: readiness.ready,
          detail: readiness.detail,
          checked_ago_ms: now - readiness.checkedAt,
        },
        fence: fence && {
          proved: fence.proved,
          how: fence.how,
          detail: fence.detail,
          reason: fence.reason,
          ago_ms: now - fence.at,
          attempts: fence.attempts,
        },
      };
      response.json(answer);
    }),
  );

  // The writer's agent renews its lease by reaching the other agents: each records the contact,
  // and reports it to the manager, which then knows how long the old writer may still hold it.
  router.post(
    '/lease/ping',
    route(async (request, response) => {
      const body = deps.parse(z.strictObject({ from: hostName }), request.body);
      contacts.set(body.from, Date.now());
      response.json({ ok: true });
    }),
  );

  // Read-only: can this agent fence its server right now? Checked afresh (config check --live).
  router.get(
    '/fence',
    route(async (_request, response) => {
      const readiness = await deps.fence.check();
      response.json({
        ready: readiness.ready,
        detail: readiness.detail,
        escalate: deps.config.fence.escalate,
        fence: deps.lease.fenceStatus() ?? null,
      });
    }),
  );

  router.post(
    '/lease/release',
    route(async (request, response) => {
      const body = deps.parse(
        z.strictObject({
          // Required: a release fences the writer, so it must be ordered like every other change.
          seq: z.number().int().nonnegative(),
          reason: z.string().max(500).optional(),
        }),
        request.body,
      );
      const refusal = deps.sequence.admit(body.seq);
      if (refusal) deps.refuse(response, 409, refusal.code, refusal.detail);
      // The fence takes the VIP lock itself. The answer is the truth: fenced only when proved.
      const verdict = await deps.lease.release(body.reason ?? 'the manager released the lease');
      deps.log.warn(
        { event: 'lease.released', reason: body.reason, proved: verdict.proved, how: verdict.how },
        verdict.proved
          ? `writer lease released on the manager's request: fenced (${verdict.how})`
          : "writer lease released on the manager's request: fence NOT proved",
      );
      const answer: ReleaseAnswer = {
        fenced: verdict.proved,
        how: verdict.how,
        detail: verdict.detail,
        ...(verdict.proved && verdict.position !== undefined ? { position: verdict.position } : {}),
      };
      response.json(answer);
    }),
  );

  return router;
}

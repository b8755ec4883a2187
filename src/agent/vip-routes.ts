import { isIP } from 'node:net';
import express, { type Response } from 'express';
import { z } from 'zod';
import { HttpError } from '../api/errors.js';
import type { Logger } from '../log.js';
import type { AgentConfig } from './config.js';
import { parseBody, route, type Refuse } from './http.js';
import type { Mutex, SequenceGuard } from './mutex.js';
import type { HeldAddress, VipDriver } from './vip-driver.js';

const ipv4 = z.string().refine((text) => isIP(text) === 4, { message: 'must be an IPv4 address' });
const addBody = z.strictObject({
  ip: ipv4,
  interface: z.string().min(1).optional(),
  prefix: z.number().int().min(8).max(32).optional(),
  seq: z.number().int().nonnegative().optional(),
});
const removeBody = z.strictObject({
  ip: ipv4,
  interface: z.string().min(1).optional(),
  seq: z.number().int().nonnegative().optional(),
});

/** Announces an added VIP once the reply is on its way: the gratuitous ARP blocks about a second. */
export type AnnounceAfter = (response: Response, ip: string, iface: string) => void;

export function announcer(
  driver: VipDriver,
  log: Logger,
  onAnnounced?: (ip: string, result: { ok: boolean; detail: string }) => void,
): AnnounceAfter {
  return (response, ip, iface) => {
    response.on('finish', () => {
      driver.announce(ip, iface).then(
        (detail) => {
          log.info({ event: 'vip.announced', ip, interface: iface, detail }, 'gratuitous ARP sent');
          onAnnounced?.(ip, { ok: true, detail });
        },
        (error: Error) => {
          log.warn(
            { event: 'vip.announce_failed', ip, interface: iface, error: error.message },
            'gratuitous ARP failed',
          );
          onAnnounced?.(ip, { ok: false, detail: error.message });
        },
      );
    });
  };
}

export interface VipRouteDeps {
  config: AgentConfig;
  driver: VipDriver;
  lock: Mutex;
  sequence: SequenceGuard;
  log: Logger;
  refuse: Refuse;
  announceAfter: AnnounceAfter;
}

/**
 * One VIP at a time (GET /api/v1/vips, POST /vips/add, /vips/remove), for operators and tests;
 * the manager's cycle converges the whole set through /api/v1/sync instead. Only the interface
 * and the IPs of the agent's own `vip` section are touched (403 otherwise).
 */
export function vipRouter(deps: VipRouteDeps): express.Router {
  const { config, driver, lock, sequence, log, refuse, announceAfter } = deps;
  const router = express.Router();
  const vipConfig = (response: Response) => {
    if (!config.vip)
      refuse(
        response,
        409,
        'not_configured',
        'this agent has no "vip" section in its config, so it holds no VIPs',
      );
    return config.vip as NonNullable<AgentConfig['vip']>;
  };
  const checkTarget = (response: Response, ip: string, iface: string | undefined) => {
    const vip = vipConfig(response);
    if (iface !== undefined && iface !== vip.interface)
      refuse(
        response,
        403,
        'interface_not_allowed',
        `interface "${iface}" is not this agent's VIP interface ("${vip.interface}")`,
      );
    if (!vip.ips.includes(ip))
      refuse(
        response,
        403,
        'ip_not_allowed',
        `${ip} is not one of this agent's VIPs (${vip.ips.join(', ')})`,
      );
    return vip;
  };
  const held = async (iface: string): Promise<HeldAddress[]> => {
    try {
      return await driver.list(iface);
    } catch (error) {
      throw new HttpError(500, 'interface_error', (error as Error).message);
    }
  };

  router.get(
    '/vips',
    route(async (_request, response) => {
      const vip = vipConfig(response);
      const addresses = await held(vip.interface);
      response.json({
        interface: vip.interface,
        allowed: vip.ips,
        held: addresses.filter((address) => vip.ips.includes(address.ip)),
      });
    }),
  );

  router.post(
    '/vips/add',
    route(async (request, response) => {
      const body = parseBody(addBody, request.body);
      const vip = checkTarget(response, body.ip, body.interface);
      const prefix = body.prefix ?? 24;
      const result = await lock.run(async () => {
        const refusal = sequence.admit(body.seq);
        if (refusal) refuse(response, 409, refusal.code, refusal.detail);
        const before = await held(vip.interface);
        if (before.some((address) => address.ip === body.ip)) return { changed: false };
        await driver.add(body.ip, prefix, vip.interface);
        const after = await held(vip.interface);
        if (!after.some((address) => address.ip === body.ip))
          throw new HttpError(
            500,
            'not_applied',
            `${body.ip} is not on ${vip.interface} after ip addr add`,
          );
        log.info(
          { event: 'vip.added', ip: body.ip, prefix, interface: vip.interface, seq: body.seq },
          'added VIP',
        );
        return { changed: true };
      });
      // Also on a no-op add: a retried add may be the one whose first announcement was lost.
      announceAfter(response, body.ip, vip.interface);
      response.json({ ip: body.ip, interface: vip.interface, prefix, changed: result.changed });
    }),
  );

  router.post(
    '/vips/remove',
    route(async (request, response) => {
      const body = parseBody(removeBody, request.body);
      const vip = checkTarget(response, body.ip, body.interface);
      const result = await lock.run(async () => {
        const refusal = sequence.admit(body.seq);
        if (refusal) refuse(response, 409, refusal.code, refusal.detail);
        const current = (await held(vip.interface)).find((address) => address.ip === body.ip);
        if (!current) return { changed: false, prefix: undefined };
        await driver.remove(body.ip, current.prefix, vip.interface);
        const after = await held(vip.interface);
        if (after.some((address) => address.ip === body.ip))
          throw new HttpError(
            500,
            'not_applied',
            `${body.ip} is still on ${vip.interface} after ip addr del`,
          );
        log.info(
          {
            event: 'vip.removed',
            ip: body.ip,
            prefix: current.prefix,
            interface: vip.interface,
            seq: body.seq,
          },
          'removed VIP',
        );
        return { changed: true, prefix: current.prefix };
      });
      response.json({
        ip: body.ip,
        interface: vip.interface,
        ...(result.prefix === undefined ? {} : { prefix: result.prefix }),
        changed: result.changed,
      });
    }),
  );

  return router;
}

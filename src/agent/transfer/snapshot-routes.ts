import express, { type Response } from 'express';
import { z } from 'zod';
import type { Logger } from '../../log.js';
import type { SnapshotInfo, SnapshotMethod } from '../../snapshot/types.js';
import type { AgentConfig } from '../config.js';
import { parseBody, route, type Refuse } from '../http.js';
import { Mutex } from '../mutex.js';

const snapshotBody = z.strictObject({
  id: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'must be 1-64 letters, digits, "_", "." or "-"'),
  path: z.string().optional(),
});

export interface SnapshotRouteDeps {
  config: AgentConfig;
  /** Absent when this build or host has no implementation for snapshot.method: 501. */
  snapshotMethod?: SnapshotMethod;
  log: Logger;
  refuse: Refuse;
}

/** The snapshots of the agent's `snapshot` section: GET, POST and DELETE /api/v1/snapshots. */
export function snapshotRouter(deps: SnapshotRouteDeps): express.Router {
  const { config, log, refuse } = deps;
  const options = { snapshotMethod: deps.snapshotMethod };
  const router = express.Router();
  const snapshots = (response: Response) => {
    if (!config.snapshot)
      refuse(response, 409, 'not_configured', 'this agent has no "snapshot" section in its config');
    if (!options.snapshotMethod)
      refuse(
        response,
        501,
        'not_implemented',
        `snapshot method "${config.snapshot?.method}" is not available in this agent`,
      );
    return {
      method: options.snapshotMethod as SnapshotMethod,
      settings: config.snapshot as NonNullable<AgentConfig['snapshot']>,
    };
  };
  const snapshotLock = new Mutex();

  router.get(
    '/snapshots',
    route(async (_request, response) => {
      const { method } = snapshots(response);
      response.json({ method: method.name, snapshots: await method.list() });
    }),
  );

  router.post(
    '/snapshots',
    route(async (request, response) => {
      const body = parseBody(snapshotBody, request.body);
      const { method, settings } = snapshots(response);
      if (body.path !== undefined && body.path !== settings.path)
        refuse(
          response,
          403,
          'path_not_allowed',
          `path "${body.path}" is not this agent's snapshot path ("${settings.path}")`,
        );
      const info = await snapshotLock.run(async () => {
        if ((await method.list()).some((snapshot) => snapshot.id === body.id))
          refuse(response, 409, 'exists', `snapshot "${body.id}" already exists`);
        log.info(
          { event: 'snapshot.take', id: body.id, method: method.name, path: settings.path },
          'taking snapshot',
        );
        return method.take({ id: body.id });
      });
      log.info(
        { event: 'snapshot.taken', id: info.id, method: info.method, gtid: info.gtidPosition },
        'snapshot taken',
      );
      response.status(201).json(info);
    }),
  );

  router.delete(
    '/snapshots/:id',
    route(async (request, response) => {
      const id = parseBody(snapshotBody, { id: request.params.id }).id;
      const { method } = snapshots(response);
      const removed = await snapshotLock.run(async () => {
        const found: SnapshotInfo | undefined = (await method.list()).find(
          (snapshot) => snapshot.id === id,
        );
        if (!found) return false;
        await method.remove(found);
        log.info({ event: 'snapshot.removed', id }, 'snapshot removed');
        return true;
      });
      response.json({ id, removed });
    }),
  );

  return router;
}

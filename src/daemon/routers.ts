import type { Router } from 'express';
import type { Daemon } from './daemon.js';

/** The webhook receiver and control API, mounted under /api/v1 next to the status routes. */
export function daemonRouters(_daemon: Daemon): Router[] {
  return [];
}

import type { Request, Response } from 'express';
import { sendError } from './errors.js';

/**
 * Query strings are read strictly: a parameter a route does not know (`host[]=x`, `hots=x`) is
 * refused with 400 instead of being ignored, which would silently drop a filter the caller meant.
 * Returns false after answering.
 */
export function onlyKnownQuery(request: Request, response: Response, known: string[]): boolean {
  const unknown = Object.keys(request.query).filter((key) => !known.includes(key));
  if (unknown.length === 0) return true;
  sendError(
    response,
    400,
    'malformed',
    `unknown query parameter ${unknown.map((key) => JSON.stringify(key)).join(', ')} (known: ${known.join(', ') || 'none'})`,
  );
  return false;
}

/** A query parameter of decimal digits as a number; absent: undefined; anything else ("", "0x10", "1e3", repeated): NaN. */
export function decimalQuery(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  return typeof value === 'string' && /^\d{1,15}$/.test(value) ? Number(value) : Number.NaN;
}

import { z } from 'zod';
import type { IncomingAlert } from '../engine/types.js';
import { formatPath, type Problem } from '../config/problems.js';

const timestamp = z
  .string()
  .refine((text) => !Number.isNaN(Date.parse(text)), { message: 'must be an RFC 3339 timestamp' });
const labelSet = z.record(
  z.string(),
  z.string({ error: 'label and annotation values must be strings' }),
);

const alertSchema = z.object({
  status: z.enum(['firing', 'resolved']),
  labels: labelSet.refine(
    (labels) => typeof labels.alertname === 'string' && labels.alertname !== '',
    { message: 'labels.alertname is required' },
  ),
  annotations: labelSet.default({}),
  startsAt: timestamp,
  endsAt: timestamp.optional(),
  generatorURL: z.string().optional(),
  fingerprint: z.string().optional(),
});

/** Alertmanager's webhook payload, version 4. Unknown top-level keys are tolerated (Alertmanager may add some). */
export const webhookSchema = z.object({
  version: z.literal('4', { error: 'only webhook payload version "4" is supported' }),
  groupKey: z.string().optional(),
  truncatedAlerts: z.number().int().min(0).optional(),
  status: z.enum(['firing', 'resolved']),
  receiver: z.string().optional(),
  groupLabels: labelSet.optional(),
  commonLabels: labelSet.optional(),
  commonAnnotations: labelSet.optional(),
  externalURL: z.string().optional(),
  alerts: z.array(alertSchema).max(1000, 'at most 1000 alerts per webhook'),
});

export type WebhookPayload = z.infer<typeof webhookSchema>;

/** Alertmanager sends the zero time for "no end yet". */
const ZERO_TIME = /^0001-01-01T00:00:00/;

export function parseWebhook(body: unknown): { payload?: WebhookPayload; problems: Problem[] } {
  const parsed = webhookSchema.safeParse(body);
  if (!parsed.success)
    return {
      problems: parsed.error.issues.map((issue) => ({
        path: formatPath(issue.path),
        message: issue.message,
      })),
    };
  return { payload: parsed.data, problems: [] };
}

export function toIncomingAlerts(payload: WebhookPayload): IncomingAlert[] {
  return payload.alerts.map((alert) => ({
    status: alert.status,
    name: alert.labels.alertname as string,
    labels: alert.labels,
    annotations: alert.annotations,
    startsAt: alert.startsAt,
    endsAt: alert.endsAt && !ZERO_TIME.test(alert.endsAt) ? alert.endsAt : undefined,
    fingerprint: alert.fingerprint,
  }));
}

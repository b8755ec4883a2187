import pino, { type Logger } from 'pino';

export type { Logger };

/**
 * Every log line is pino JSON with a stable `event` field (e.g. `host.state_changed`), so
 * operators can alert and grep on events without parsing messages. Secrets are redacted by
 * key name as a second line of defence; the first is never passing them to a logger.
 */
export function createLogger(
  component: string,
  options: { level?: string; destination?: pino.DestinationStream } = {},
): Logger {
  const level = options.level ?? process.env.SWITCHYARD_LOG_LEVEL ?? 'info';
  const settings: pino.LoggerOptions = {
    level,
    base: { component },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: [
        'password',
        '*.password',
        'token',
        '*.token',
        'authorization',
        '*.authorization',
        'headers.authorization',
      ],
      censor: '[redacted]',
    },
  };
  return options.destination ? pino(settings, options.destination) : pino(settings);
}

/** A logger that discards everything, for CLI commands and unit tests. */
export const silentLogger: Logger = pino({ level: 'silent' });

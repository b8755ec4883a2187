import type { Command } from 'commander';
import { loadConfig } from '../config/load.js';
import { readSecret } from '../config/secrets.js';
import { CliExit, EXIT_FAILED, EXIT_USAGE } from './exit.js';

export interface ClientOptions {
  url?: string;
  tokenFile?: string;
  config?: string;
}

/** Adds --url, --token-file and -c to a command that talks to a running daemon. */
export function withDaemonOptions(command: Command): Command {
  return command
    .option('--url <url>', 'daemon URL (default: from -c, else http://127.0.0.1:9105)')
    .option('--token-file <file>', 'file with the API token (default: SWITCHYARD_TOKEN, else from -c)')
    .option('-c, --config <file>', 'config file to take the URL and token file from');
}

export interface DaemonClient {
  request<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
  baseUrl: string;
}

function localUrl(listen: string): string {
  const index = listen.lastIndexOf(':');
  const host = listen.slice(0, index);
  const port = listen.slice(index + 1);
  return `http://${host === '0.0.0.0' || host === '' ? '127.0.0.1' : host}:${port}`;
}

/**
 * The control-API client used by show, checks, set-online, move-role and the rest. The token is
 * read from a file or the environment, never from the command line.
 */
export function createDaemonClient(options: ClientOptions): DaemonClient {
  let baseUrl = options.url;
  let token: string | undefined;
  const config = options.config ? loadConfig(options.config) : undefined;
  if (!baseUrl) baseUrl = config ? localUrl(config.listen) : 'http://127.0.0.1:9105';
  if (options.tokenFile) token = readSecret({ file: options.tokenFile }, 'API token');
  else if (process.env.SWITCHYARD_TOKEN) token = process.env.SWITCHYARD_TOKEN;
  else if (config) token = readSecret({ file: config.auth.token_file, env: config.auth.token_env }, 'API token');
  if (!token) throw new CliExit(EXIT_USAGE, 'no API token: set SWITCHYARD_TOKEN, or pass --token-file or -c');
  const base = baseUrl.replace(/\/$/, '');
  const send = async <T>(root: string, method: string, path: string, body?: unknown) => {
    let response: Response;
    try {
      response = await fetch(`${root}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(120_000),
      });
    } catch (error) {
      throw new CliExit(EXIT_FAILED, `cannot reach the daemon at ${root}: ${(error as Error).message}`);
    }
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON; keep the text for the error message
    }
    return { status: response.status, body: parsed as T };
  };
  return {
    baseUrl: base,
    async request<T>(method: string, path: string, body?: unknown) {
      const first = await send<T>(base, method, path, body);
      // Several managers: a follower answers 409 not_leader with the leader's URL; follow it once.
      const refusal = first.body as { error?: string; leader?: unknown } | undefined;
      if (first.status === 409 && refusal?.error === 'not_leader' && typeof refusal.leader === 'string' && /^https?:\/\//.test(refusal.leader)) {
        return send<T>(refusal.leader.replace(/\/$/, ''), method, path, body);
      }
      return first;
    },
  };
}

/** Turns a non-2xx answer into the exit codes of the README: 4xx usage -> 2, refusals and failures -> 1. */
export function failOnError(result: { status: number; body: unknown }): void {
  if (result.status >= 200 && result.status < 300) return;
  const body = result.body as { error?: string; detail?: string };
  const message = typeof body === 'object' && body ? `${body.error ?? 'error'}: ${body.detail ?? ''}` : String(result.body);
  const code = result.status === 400 || result.status === 404 ? EXIT_USAGE : EXIT_FAILED;
  throw new CliExit(code, `${result.status} ${message}`);
}

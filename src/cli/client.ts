import type { Command } from 'commander';
import { fetch as undiciFetch } from 'undici';
import { tokenSpecs } from '../api/scopes.js';
import { TlsDispatcher } from '../net/tls.js';
import { loadConfigs } from '../config/conf-dir.js';
import { readSecret } from '../config/secrets.js';
import { CliExit, EXIT_FAILED, EXIT_USAGE } from './exit.js';
import { bearerJsonInit } from '../net/bearer-json.js';

export interface ClientOptions {
  url?: string;
  tokenFile?: string;
  config?: string;
  /** The cluster to address when the daemon runs several (`--cluster NAME`). */
  cluster?: string;
  caFile?: string;
  certFile?: string;
  keyFile?: string;
}

/** Adds --url, --token-file and -c to a command that talks to a running daemon. */
export function withDaemonOptions(command: Command): Command {
  return command
    .option('--url <url>', 'daemon URL (default: from -c, else http://127.0.0.1:9105)')
    .option(
      '--token-file <file>',
      'file with the API token (default: SWITCHYARD_TOKEN, else from -c)',
    )
    .option(
      '-c, --config <file>',
      'config file (or clusters: file, conf.d directory) to take the URL and token file from',
    )
    .option(
      '--cluster <name>',
      'the cluster to address, when the daemon runs several (default: its only one)',
    )
    .option(
      '--ca-file <file>',
      "CA certificate to verify the daemon's HTTPS certificate with (default: the system store)",
    )
    .option(
      '--cert-file <file>',
      'client certificate, when the daemon requires one (tls.client_ca_file)',
    )
    .option('--key-file <file>', 'key of --cert-file');
}

export interface DaemonClient {
  request<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
  baseUrl: string;
}

function localUrl(listen: string, https: boolean): string {
  const index = listen.lastIndexOf(':');
  const host = listen.slice(0, index);
  const port = listen.slice(index + 1);
  return `${https ? 'https' : 'http'}://${host === '0.0.0.0' || host === '' ? '127.0.0.1' : host}:${port}`;
}

/**
 * The control-API client used by show, checks, set-online, move-role and the rest. The token is
 * read from a file or the environment, never from the command line.
 */
export function createDaemonClient(options: ClientOptions): DaemonClient {
  let baseUrl = options.url;
  let token: string | undefined;
  // listen, tls and auth are process-level: any cluster of a clusters: file or conf.d gives them.
  const config = options.config ? loadConfigs(options.config)[0] : undefined;
  if (!baseUrl)
    baseUrl = config ? localUrl(config.listen, config.tls !== undefined) : 'http://127.0.0.1:9105';
  if ((options.certFile === undefined) !== (options.keyFile === undefined))
    throw new CliExit(EXIT_USAGE, '--cert-file and --key-file go together');
  const tls =
    options.caFile !== undefined || options.certFile !== undefined
      ? new TlsDispatcher({
          ca_file: options.caFile,
          cert_file: options.certFile,
          key_file: options.keyFile,
        })
      : undefined;
  if (options.tokenFile) token = readSecret({ file: options.tokenFile }, 'API token');
  else if (process.env.SWITCHYARD_TOKEN) token = process.env.SWITCHYARD_TOKEN;
  else if (config) {
    // The config's most capable token: admin (token_file/env or a scoped one), else operate, else read.
    const specs = tokenSpecs(config.auth);
    const rank = (scopes: readonly string[]) =>
      scopes.includes('admin')
        ? 3
        : scopes.includes('operate')
          ? 2
          : scopes.includes('read')
            ? 1
            : 0;
    const best = [...specs].sort((a, b) => rank(b.scopes) - rank(a.scopes))[0];
    if (best) token = readSecret(best.source, `API token "${best.name}"`);
  }
  if (!token)
    throw new CliExit(EXIT_USAGE, 'no API token: set SWITCHYARD_TOKEN, or pass --token-file or -c');
  const base = baseUrl.replace(/\/$/, '');
  // Several clusters behind one listener: /api/v1/clusters/NAME/... addresses one of them.
  const addressed = (path: string) =>
    options.cluster === undefined
      ? path
      : path.replace(/^\/api\/v1\//, `/api/v1/clusters/${encodeURIComponent(options.cluster)}/`);
  const send = async <T>(root: string, method: string, path: string, body?: unknown) => {
    let response: { status: number; text(): Promise<string> };
    try {
      const init = bearerJsonInit(method, token, body, 120_000);
      response = tls
        ? await undiciFetch(`${root}${path}`, { ...init, dispatcher: tls.get() })
        : await fetch(`${root}${path}`, init);
    } catch (error) {
      const cause = (error as { cause?: Error }).cause?.message;
      throw new CliExit(
        EXIT_FAILED,
        `cannot reach the daemon at ${root}: ${(error as Error).message}${cause ? ` (${cause})` : ''}`,
      );
    } finally {
      // One request per command (journal -f makes one per second): no pooled TLS connection keeps the process alive.
      await tls?.close();
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
      const first = await send<T>(base, method, addressed(path), body);
      // Several managers: a follower answers 409 not_leader with the leader's URL; follow it once.
      const refusal = first.body as { error?: string; leader?: unknown } | undefined;
      if (
        first.status === 409 &&
        refusal?.error === 'not_leader' &&
        typeof refusal.leader === 'string' &&
        /^https?:\/\//.test(refusal.leader)
      ) {
        return send<T>(refusal.leader.replace(/\/$/, ''), method, addressed(path), body);
      }
      return first;
    },
  };
}

/** Turns a non-2xx answer into the exit codes of the README: 4xx usage -> 2, refusals and failures -> 1. */
export function failOnError(result: { status: number; body: unknown }): void {
  if (result.status >= 200 && result.status < 300) return;
  const body = result.body as { error?: string; detail?: string };
  const message =
    typeof body === 'object' && body
      ? `${body.error ?? 'error'}: ${body.detail ?? ''}`
      : String(result.body);
  const code = result.status === 400 || result.status === 404 ? EXIT_USAGE : EXIT_FAILED;
  throw new CliExit(code, `${result.status} ${message}`);
}

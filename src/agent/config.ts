import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname, isAbsolute, resolve } from 'node:path';
import * as yaml from 'js-yaml';
import { z } from 'zod';
import { ConfigError, formatPath, type Problem } from '../config/problems.js';
import { serverTlsSchema } from '../config/schema.js';
import { replicationSchema, serviceSchema } from './transfer-config.js';

/**
 * The agent's own file (one per database host). It names the only interface, IPs and data path
 * this agent will ever touch: whatever the manager asks, nothing outside this file is changed.
 */
const listenAddress = z
  .string()
  .refine(
    (text) => /^[A-Za-z0-9.:[\]-]*:\d{1,5}$/.test(text) && Number(text.split(':').pop()) <= 65535,
    {
      message: 'must be HOST:PORT, such as 10.0.0.11:9106',
    },
  );
const interfaceName = z
  .string()
  .regex(/^[A-Za-z0-9_.@-]{1,15}$/, 'must be a network interface name');
const ipv4 = z.string().refine((text) => isIP(text) === 4, { message: 'must be an IPv4 address' });

export const agentConfigSchema = z.strictObject({
  listen: listenAddress,
  /**
   * Optional plain-HTTP listener that serves only GET /health/writer and /health/reader (for
   * routers that cannot present the agent's client certificate or reach its API port).
   */
  health_listen: listenAddress.optional(),
  auth: z
    .strictObject({
      token_file: z.string().min(1).optional(),
      token_env: z
        .string()
        .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name')
        .optional(),
    })
    .superRefine((value, ctx) => {
      if (value.token_file === undefined && value.token_env === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['token_file'],
          message: 'set token_file or token_env: the agent always requires a token',
        });
      } else if (value.token_file !== undefined && value.token_env !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['token_env'],
          message: 'set only one of token_file and token_env',
        });
      }
    }),
  /**
   * HTTPS on `listen`; with client_ca_file only a manager (or peer agent) holding a certificate it
   * signed gets through. The writer's lease pings other agents with this certificate as client
   * certificate, checking theirs against peer_ca_file (default client_ca_file).
   */
  tls: serverTlsSchema.extend({ peer_ca_file: z.string().min(1).optional() }).optional(),
  vip: z
    .strictObject({
      interface: interfaceName,
      ips: z
        .array(ipv4)
        .min(1, 'list the role IPs this host may hold')
        .refine((ips) => new Set(ips).size === ips.length, { message: 'an IP is listed twice' }),
      /**
       * After a VIP leaves this host, refuse (iptables nat REDIRECT to a closed port) the
       * connections that still arrive for it from clients with a stale ARP entry, instead of
       * letting the kernel drop them: they retry at once rather than after their connect timeout.
       */
      refuse_moved: z.boolean().default(true),
    })
    .optional(),
  /**
   * The cluster's agents (this one may be listed too): host name -> agent URL and, when it differs
   * from the URL's host, the address its MySQL listens on. With it, the manager can only name these
   * as lease voters (which receive this agent's token), as the writer to probe, and as the source
   * of a copy; without it, any address the manager sends is used.
   */
  peers: z
    .record(
      z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'must be a host name'),
      z.strictObject({
        agent: z
          .string()
          .url()
          .refine((text) => /^https?:\/\//.test(text), { message: 'must be an http(s) URL' }),
        address: z.string().min(1).optional(),
      }),
    )
    .optional(),
  /**
   * How the agent reaches the MySQL server on this host, for the writer lease's local fence
   * (read_only=ON and client sessions killed when the writer is cut off from the majority).
   * Without it, an isolated writer's agent can only take its VIP down.
   */
  mysql: z
    .strictObject({
      socket: z
        .string()
        .refine((text) => isAbsolute(text), { message: 'must be an absolute path' })
        .optional(),
      address: z.string().min(1).default('127.0.0.1'),
      port: z.number().int().min(1).max(65535).default(3306),
      user: z.string().min(1),
      password_file: z.string().min(1).optional(),
      password_env: z
        .string()
        .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name')
        .optional(),
    })
    .superRefine((value, ctx) => {
      if (value.password_file === undefined && value.password_env === undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['password_file'],
          message: 'set password_file or password_env',
        });
      else if (value.password_file !== undefined && value.password_env !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['password_env'],
          message: 'set only one of password_file and password_env',
        });
    })
    .optional(),
  /**
   * What the local fence does when read_only=ON cannot be proved (login refused, the server hung,
   * read_only reads back OFF): stop the server. `kill` sends SIGKILL to the mariadbd/mysqld found
   * by `pid_file` or listening on the mysql section's socket or port; `service` runs `stop` (an
   * argument list; default snapshot.service.stop); `none` only reports the failure and retries.
   */
  fence: z
    .strictObject({
      escalate: z.enum(['kill', 'service', 'none']).default('kill'),
      stop: z
        .array(z.string().min(1, 'an argument must not be empty'))
        .min(1, 'give the program and its arguments as a list, e.g. [systemctl, kill, mariadb]')
        .optional(),
      pid_file: z
        .string()
        .refine((text) => isAbsolute(text), { message: 'must be an absolute path' })
        .optional(),
    })
    .prefault({}),
  snapshot: z
    .strictObject({
      method: z.enum(['lvm', 'btrfs', 'mariabackup']),
      /** The datadir (or subvolume) the snapshot copies; the only path the agent accepts. */
      path: z.string().refine((text) => isAbsolute(text), { message: 'must be an absolute path' }),
      /** lvm: the logical volume, e.g. vg0/mysql. */
      volume: z
        .string()
        .regex(/^[A-Za-z0-9_.+-]+\/[A-Za-z0-9_.+-]+$/, 'must be VG/LV')
        .optional(),
      /** lvm: snapshot size, e.g. 5G. */
      size: z
        .string()
        .regex(/^\d+[KMGT]?$/i, 'must be a size such as 5G')
        .optional(),
      /** Where snapshots or backups are kept (btrfs subvolumes, mariabackup directories). */
      target_dir: z
        .string()
        .refine((text) => isAbsolute(text), { message: 'must be an absolute path' })
        .optional(),
      /**
       * Where this agent keeps backups streamed to it from other agents (`backup --to-agent`),
       * laid out like the manager's backup.dir: <host>/<time>-full. Must exist; never created.
       */
      backup_dir: z
        .string()
        .refine((text) => isAbsolute(text), { message: 'must be an absolute path' })
        .optional(),
      /** How this host's MariaDB is stopped and started when a copy is swapped in (argument arrays). */
      service: serviceSchema.optional(),
      /** The account a copy swapped in here replicates from the writer with. */
      replication: replicationSchema.optional(),
    })
    .superRefine((value, ctx) => {
      if (value.method === 'lvm' && value.volume === undefined)
        ctx.addIssue({ code: 'custom', path: ['volume'], message: 'lvm needs "volume" (VG/LV)' });
    })
    .optional(),
});

export type AgentConfig = z.output<typeof agentConfigSchema> & { source: string };

export function validateAgentConfig(
  raw: unknown,
  file: string,
): { config?: AgentConfig; problems: Problem[] } {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    return {
      problems: [{ path: '(top level)', message: 'the agent config must be a YAML mapping' }],
    };
  const parsed = agentConfigSchema
    .superRefine((value, ctx) => {
      if (
        value.fence.escalate === 'service' &&
        value.fence.stop === undefined &&
        value.snapshot?.service === undefined
      )
        ctx.addIssue({
          code: 'custom',
          path: ['fence', 'stop'],
          message:
            'escalate: service needs fence.stop (or snapshot.service.stop) to stop the server',
        });
    })
    .safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.flatMap((issue): Problem[] => {
      if (issue.code === 'unrecognized_keys')
        return issue.keys.map((key) => ({
          path: formatPath([...issue.path, key]),
          message: 'unknown key',
        }));
      let message = issue.message;
      if (issue.code === 'invalid_type' && /received undefined/.test(message))
        message = 'is required';
      else if (issue.code === 'invalid_value' && 'values' in issue)
        message = `must be one of ${issue.values.map((value) => JSON.stringify(value)).join(', ')}`;
      return [{ path: formatPath(issue.path), message }];
    });
    return { problems: problems.sort((a, b) => a.path.localeCompare(b.path)) };
  }
  const source = resolve(file);
  const tokenFile = parsed.data.auth.token_file;
  const relative = (file: string | undefined) =>
    file === undefined || isAbsolute(file) ? file : resolve(dirname(source), file);
  const at = (file: string) => relative(file) as string;
  const tls = parsed.data.tls;
  const config: AgentConfig = {
    ...parsed.data,
    tls: tls && {
      cert_file: at(tls.cert_file),
      key_file: at(tls.key_file),
      client_ca_file: relative(tls.client_ca_file),
      peer_ca_file: relative(tls.peer_ca_file),
    },
    auth: { ...parsed.data.auth, token_file: relative(tokenFile) },
    ...(parsed.data.mysql
      ? {
          mysql: { ...parsed.data.mysql, password_file: relative(parsed.data.mysql.password_file) },
        }
      : {}),
    source,
  };
  return { config, problems: [] };
}

export function readAgentConfigFile(file: string): { config?: AgentConfig; problems: Problem[] } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    return {
      problems: [
        {
          path: '(file)',
          message: `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
        },
      ],
    };
  }
  let raw: unknown;
  try {
    raw = yaml.load(text, { filename: file });
  } catch (error) {
    const mark = (error as { mark?: { line: number; column: number } }).mark;
    return {
      problems: [
        {
          path: mark ? `line ${mark.line + 1}, column ${mark.column + 1}` : '(yaml)',
          message: `not valid YAML: ${(error as { reason?: string }).reason ?? (error as Error).message}`,
        },
      ],
    };
  }
  return validateAgentConfig(raw, file);
}

export function loadAgentConfig(file: string): AgentConfig {
  const { config, problems } = readAgentConfigFile(file);
  if (!config) throw new ConfigError(file, problems);
  return config;
}

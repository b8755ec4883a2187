import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname, isAbsolute, resolve } from 'node:path';
import * as yaml from 'js-yaml';
import { z } from 'zod';
import { ConfigError, formatPath, type Problem } from '../config/problems.js';
import { serverTlsSchema } from '../config/schema.js';
import { replicationSchema, serviceSchema } from './transfer/config.js';

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
  )
  .meta({ valueType: 'HOST:PORT' });
const interfaceName = z
  .string()
  .regex(/^[A-Za-z0-9_.@-]{1,15}$/, 'must be a network interface name')
  .meta({ valueType: 'network interface name' });
const ipv4 = z
  .string()
  .refine((text) => isIP(text) === 4, { message: 'must be an IPv4 address' })
  .meta({ valueType: 'IPv4 address' });
const absolutePath = z
  .string()
  .refine((text) => isAbsolute(text), { message: 'must be an absolute path' })
  .meta({ valueType: 'absolute path' });
const filePath = z.string().min(1).meta({ valueType: 'file path' });
const envName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name')
  .meta({ valueType: 'environment variable name' });

export const agentConfigSchema = z.strictObject({
  listen: listenAddress.meta({
    description:
      "Address of the agent's API (the manager's per-cycle exchange, peers' lease votes, transfers) and of /health/writer and /health/reader.",
    example: '10.0.0.11:9106',
  }),
  /**
   * Optional plain-HTTP listener that serves only GET /health/writer and /health/reader (for
   * routers that cannot present the agent's client certificate or reach its API port).
   */
  health_listen: listenAddress.optional().meta({
    description:
      "A plain-HTTP listener serving only GET /health/writer and /health/reader, for routers that cannot present the agent's client certificate or reach its API port.",
    example: '10.0.0.11:9200',
  }),
  auth: z
    .strictObject({
      token_file: filePath.optional().meta({
        description:
          "File holding the token the manager and the peer agents present (the same on every host: agents vote in the writer's lease); set this or token_env.",
        example: '/etc/switchyard/agent.token',
        exampleEnabled: true,
      }),
      token_env: envName.optional().meta({
        description: 'Environment variable holding the agent token; instead of token_file.',
        example: 'SWITCHYARD_AGENT_TOKEN',
      }),
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
    })
    .meta({ description: 'The bearer token every request to the agent must carry.' }),
  /**
   * HTTPS on `listen`; with client_ca_file only a manager (or peer agent) holding a certificate it
   * signed gets through. The writer's lease pings other agents with this certificate as client
   * certificate, checking theirs against peer_ca_file (default client_ca_file).
   */
  tls: serverTlsSchema
    .extend({
      peer_ca_file: filePath.optional().meta({
        description:
          "The CA (PEM) the writer's lease checks other agents' certificates against when it asks them for votes.",
        example: '/etc/switchyard/tls/agents-ca.crt',
        defaultText: 'client_ca_file',
      }),
    })
    .optional()
    .meta({
      description:
        'HTTPS on `listen`; with client_ca_file only a manager or peer agent holding a certificate it signed gets through. The lease presents this certificate to other agents.',
    }),
  vip: z
    .strictObject({
      interface: interfaceName.meta({
        description: 'The only interface the agent adds and removes VIPs on.',
        example: 'eth0',
      }),
      ips: z
        .array(ipv4)
        .min(1, 'list the role IPs this host may hold')
        .refine((ips) => new Set(ips).size === ips.length, { message: 'an IP is listed twice' })
        .meta({
          description:
            'The only IPs this host may hold (the role IPs it can be given); the agent refuses any other.',
          example: ['10.0.0.100', '10.0.0.101'],
        }),
      /**
       * After a VIP leaves this host, refuse (iptables nat REDIRECT to a closed port) the
       * connections that still arrive for it from clients with a stale ARP entry, instead of
       * letting the kernel drop them: they retry at once rather than after their connect timeout.
       */
      refuse_moved: z.boolean().default(true).meta({
        description:
          'After a VIP leaves this host, refuse (iptables REDIRECT to a closed port) the connections that still arrive for it from clients with a stale ARP entry, so they retry at once instead of waiting for their connect timeout.',
      }),
    })
    .optional()
    .meta({
      description: 'Virtual IPs: the interface and IPs this agent may touch, nothing else.',
      exampleEnabled: true,
    }),
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
          .refine((text) => /^https?:\/\//.test(text), { message: 'must be an http(s) URL' })
          .meta({
            valueType: 'http(s) URL',
            description: "The peer's agent URL.",
            example: 'http://10.0.0.12:9106',
          }),
        address: z.string().min(1).optional().meta({
          description: "Where the peer's MySQL listens, when it differs from the agent URL's host.",
          example: '10.0.1.11',
          defaultText: "the agent URL's host",
        }),
      }),
    )
    .optional()
    .meta({
      description:
        "The cluster's agents by host name (this one may be listed too). With it, the manager can only name these as lease voters (which receive this agent's token), as the writer to probe and as the source of a copy; without it, any address the manager sends is used.",
      example: {
        db1: { agent: 'http://10.0.0.11:9106' },
        db2: { agent: 'http://10.0.0.12:9106' },
        db3: { agent: 'http://10.0.0.13:9106' },
      },
    }),
  /**
   * How the agent reaches the MySQL server on this host, for the writer lease's local fence
   * (read_only=ON and client sessions killed when the writer is cut off from the majority).
   * Without it, an isolated writer's agent can only take its VIP down.
   */
  mysql: z
    .strictObject({
      socket: absolutePath.optional().meta({
        description: "The local server's socket; used instead of address and port when set.",
        example: '/run/mysqld/mysqld.sock',
        exampleEnabled: true,
      }),
      address: z.string().min(1).default('127.0.0.1').meta({
        description: "The local server's address, when no socket is set.",
      }),
      port: z.number().int().min(1).max(65535).default(3306).meta({
        description: "The local server's port, when no socket is set.",
      }),
      user: z.string().min(1).meta({
        description:
          'The account of the local fence: it needs READ_ONLY ADMIN (to set read_only) and CONNECTION ADMIN (to kill sessions); `agent --check` tells.',
        example: 'switchyard',
      }),
      password_file: filePath.optional().meta({
        description: "File holding the account's password; set this or password_env.",
        example: '/etc/switchyard/mysql.pass',
        exampleEnabled: true,
      }),
      password_env: envName.optional().meta({
        description:
          "Environment variable holding the account's password; instead of password_file.",
        example: 'SWITCHYARD_MYSQL_PASSWORD',
      }),
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
    .optional()
    .meta({
      description:
        "How the agent reaches this host's MySQL server for the writer lease's local fence (read_only=ON and client sessions killed when the writer is cut off from the majority). Without it, an isolated writer's agent can only take its VIP down.",
      exampleEnabled: true,
    }),
  /**
   * What the local fence does when read_only=ON cannot be proved (login refused, the server hung,
   * read_only reads back OFF): stop the server. `kill` sends SIGKILL to the mariadbd/mysqld found
   * by `pid_file` or listening on the mysql section's socket or port; `service` runs `stop` (an
   * argument list; default snapshot.service.stop); `none` only reports the failure and retries.
   */
  fence: z
    .strictObject({
      escalate: z.enum(['kill', 'service', 'none']).default('kill').meta({
        description:
          'When read_only=ON cannot be proved: kill sends SIGKILL to the server (found by pid_file, or listening on the mysql socket or port); service runs `stop`; none only reports and retries.',
      }),
      stop: z
        .array(z.string().min(1, 'an argument must not be empty'))
        .min(1, 'give the program and its arguments as a list, e.g. [systemctl, kill, mariadb]')
        .optional()
        .meta({
          valueType: 'program and arguments (list)',
          description: 'For escalate: service, how the server is stopped.',
          example: ['systemctl', 'kill', '--signal=KILL', 'mariadb'],
          defaultText: 'snapshot.service.stop',
        }),
      pid_file: absolutePath.optional().meta({
        description: "The server's pid file, for escalate: kill.",
        example: '/run/mysqld/mysqld.pid',
      }),
    })
    .prefault({})
    .meta({
      description:
        'What the local fence does when read_only=ON cannot be proved (login refused, server hung, read_only reads back OFF): stop the server.',
    }),
  snapshot: z
    .strictObject({
      method: z.enum(['lvm', 'btrfs', 'mariabackup']).meta({
        description:
          'How this host copies its data: mariabackup (hot backup), btrfs (read-only subvolume snapshot) or lvm (LV snapshot), the last two under a brief FLUSH TABLES WITH READ LOCK.',
        example: 'mariabackup',
      }),
      /** The datadir (or subvolume) the snapshot copies; the only path the agent accepts. */
      path: absolutePath.meta({
        description:
          'The datadir (or subvolume) the snapshot copies; the only data path the agent accepts.',
        example: '/var/lib/mysql',
      }),
      /** lvm: the logical volume, e.g. vg0/mysql. */
      volume: z
        .string()
        .regex(/^[A-Za-z0-9_.+-]+\/[A-Za-z0-9_.+-]+$/, 'must be VG/LV')
        .optional()
        .meta({
          valueType: 'VG/LV',
          description: 'lvm: the logical volume holding the datadir (required for lvm).',
          example: 'vg0/mysql',
        }),
      /** lvm: snapshot size, e.g. 5G. */
      size: z
        .string()
        .regex(/^\d+[KMGT]?$/i, 'must be a size such as 5G')
        .optional()
        .meta({
          valueType: 'LVM size (5G)',
          description: "lvm: the snapshot volume's size (lvcreate -L).",
          example: '5G',
        }),
      /** Where snapshots or backups are kept (btrfs subvolumes, mariabackup directories). */
      target_dir: absolutePath.optional().meta({
        description:
          'Where snapshots or local backups are kept (btrfs subvolumes, mariabackup directories).',
        example: '/var/lib/switchyard/snapshots',
      }),
      /**
       * Where this agent keeps backups streamed to it from other agents (`backup --to-agent`),
       * laid out like the manager's backup.dir: <host>/<time>-full. Must exist; never created.
       */
      backup_dir: absolutePath.optional().meta({
        description:
          "Where this agent keeps backups streamed to it from other agents (`backup --to-agent`), laid out like the manager's backup.dir. Must exist; never created.",
        example: '/var/backups/switchyard',
      }),
      /** How this host's MariaDB is stopped and started when a copy is swapped in (argument arrays). */
      service: serviceSchema.optional().meta({
        description:
          "How this host's server is stopped and started when a copy is swapped in (clone, restore).",
      }),
      /** The account a copy swapped in here replicates from the writer with. */
      replication: replicationSchema.optional().meta({
        description: 'The account a copy swapped in here replicates from the writer with.',
      }),
    })
    .superRefine((value, ctx) => {
      if (value.method === 'lvm' && value.volume === undefined)
        ctx.addIssue({ code: 'custom', path: ['volume'], message: 'lvm needs "volume" (VG/LV)' });
    })
    .optional()
    .meta({
      description:
        "Snapshots and copies of this host's data: clone, backup and restore through the agent.",
    }),
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

import { isIP } from 'node:net';
import cron from 'node-cron';
import { z } from 'zod';
import { parseDuration } from './duration.js';
import { parseSize } from './size.js';

/** A duration string converted to milliseconds at parse time, so nothing downstream re-parses. */
const duration = z
  .string({ error: 'must be a duration string such as "500ms", "1s", "2m"' })
  .transform((text, ctx) => {
    try {
      return parseDuration(text);
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: (error as Error).message });
      return z.NEVER;
    }
  });

/** A size string ("64MiB", "100MB") converted to bytes at parse time. */
const size = z
  .string({ error: 'must be a size string such as "64MiB" or "100MB"' })
  .transform((text, ctx) => {
    try {
      return parseSize(text);
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: (error as Error).message });
      return z.NEVER;
    }
  });

const name = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'must be letters, digits, "_", "." or "-" (max 63)');
const ipv4 = z.string().refine((text) => isIP(text) === 4, { message: 'must be an IPv4 address' });
const hostAddress = z.string().regex(/^[A-Za-z0-9.:-]+$/, 'must be an IP address or a DNS name');
const port = z.number().int().min(1).max(65535);
const httpUrl = z.string().refine((text) => /^https?:\/\/[^\s/]+(:\d+)?\/?$/.test(text), {
  message: 'must be an http(s) URL such as http://10.0.0.11:9106',
});
const listenAddress = z
  .string()
  .refine(
    (text) => /^[A-Za-z0-9.:[\]-]*:\d{1,5}$/.test(text) && Number(text.split(':').pop()) <= 65535,
    {
      message: 'must be HOST:PORT, such as 0.0.0.0:9105',
    },
  );

/** Secrets come only from a file or the environment; never inline, so they never land in a repo or `ps`. */
const secretFile = z.string().min(1).optional();
const secretEnv = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name')
  .optional();

/** HTTPS for a listener: its certificate and key; with client_ca_file, clients must present a certificate it signed. */
export const serverTlsSchema = z.strictObject({
  cert_file: z.string().min(1),
  key_file: z.string().min(1),
  client_ca_file: z.string().min(1).optional(),
});

const mysqlSchema = z
  .strictObject({
    user: z.string().min(1),
    password_file: secretFile,
    password_env: secretEnv,
    replication_user: z.string().min(1),
    replication_password_file: secretFile,
    replication_password_env: secretEnv,
    /**
     * Optional account for the actuator's read_only changes and KILLs. In MariaDB 10.11 setting
     * read_only needs READ_ONLY ADMIN, which also lets that account write to a read-only host; so
     * the everyday `user` (heartbeat, checks) can stay without it. Defaults to `user`.
     */
    admin_user: z.string().min(1).optional(),
    admin_password_file: secretFile,
    admin_password_env: secretEnv,
    /** TLS on every manager connection; replication: also for the replication Switchyard sets up. */
    tls: z
      .strictObject({
        ca_file: z.string().min(1),
        cert_file: z.string().min(1).optional(),
        key_file: z.string().min(1).optional(),
        verify_identity: z.boolean().default(true),
        replication: z.boolean().default(false),
      })
      .superRefine((value, ctx) => {
        if ((value.cert_file === undefined) !== (value.key_file === undefined)) {
          ctx.addIssue({
            code: 'custom',
            path: [value.cert_file === undefined ? 'cert_file' : 'key_file'],
            message: 'cert_file and key_file go together (a client certificate)',
          });
        }
      })
      .optional(),
  })
  .superRefine((value, ctx) => {
    if (
      value.admin_user !== undefined &&
      value.admin_password_file === undefined &&
      value.admin_password_env === undefined
    ) {
      ctx.addIssue({
        code: 'custom',
        path: ['admin_password_file'],
        message: 'admin_user needs admin_password_file or admin_password_env',
      });
    }
    if (value.admin_password_file !== undefined && value.admin_password_env !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['admin_password_env'],
        message: 'set only one of admin_password_file and admin_password_env',
      });
    }
    if (
      value.admin_user === undefined &&
      (value.admin_password_file !== undefined || value.admin_password_env !== undefined)
    ) {
      ctx.addIssue({
        code: 'custom',
        path: ['admin_user'],
        message: 'an admin password is set but admin_user is not',
      });
    }
    for (const prefix of ['password', 'replication_password']) {
      const file = (value as Record<string, unknown>)[`${prefix}_file`];
      const env = (value as Record<string, unknown>)[`${prefix}_env`];
      if (file === undefined && env === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: [`${prefix}_file`],
          message: `set ${prefix}_file or ${prefix}_env (secrets are never written inline)`,
        });
      } else if (file !== undefined && env !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: [`${prefix}_env`],
          message: `set only one of ${prefix}_file and ${prefix}_env`,
        });
      }
    }
  });

const hostSchema = z.strictObject({
  address: hostAddress,
  port: port.default(3306),
  peer: z.string().optional(),
  replica_of: z.string().optional(),
  agent: httpUrl.optional(),
});

const roleSchema = z.strictObject({
  exclusive: z.boolean().default(false),
  hosts: z.array(z.string()).min(1, 'a role needs at least one host'),
  ips: z.array(ipv4).default([]),
  prefer: z.string().optional(),
});

const monitorSchema = z.strictObject({
  interval: duration.default(1000),
  connect_timeout: duration.default(1000),
  check_timeout: duration.optional(),
  failures_before_down: z.number().int().min(1).max(100).default(3),
  max_lag: duration.default(10_000),
  auto_set_online: duration.default(60_000),
  /** A host held for errant transactions is saved and rebuilt by itself (rejoin --discard-errant); default false. */
  auto_rejoin: z.boolean().optional(),
  flap: z
    .strictObject({ count: z.number().int().min(2).default(3), window: duration.default(600_000) })
    .default({ count: 3, window: 600_000 }),
  ping_ips: z.array(ipv4).default([]),
});

const ruleSchema = z
  .strictObject({
    alert: z.string().min(1),
    action: z.enum(['drop_roles', 'move_role']),
    roles: z.array(z.string()).optional(),
    role: z.string().optional(),
  })
  .superRefine((rule, ctx) => {
    if (rule.action === 'drop_roles' && (!rule.roles || rule.roles.length === 0)) {
      ctx.addIssue({
        code: 'custom',
        path: ['roles'],
        message: 'drop_roles needs a non-empty "roles" list',
      });
    }
    if (rule.action === 'move_role' && !rule.role) {
      ctx.addIssue({ code: 'custom', path: ['role'], message: 'move_role needs "role"' });
    }
  });

const snapshotMethod = z.enum(['lvm', 'btrfs', 'mariabackup']);

const cronExpression = z.string().refine((text) => cron.validate(text), {
  message: 'must be a cron expression such as "0 3 * * *"',
});
const schemaName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, 'must be a plain schema name');
const tableName = z
  .string()
  .regex(/^[A-Za-z0-9_$]+(\.([A-Za-z0-9_$]+|\*))?$/, 'must be "db.table", "db.*" or "db"');

const checksumSchema = z.strictObject({
  schedule: cronExpression.optional(),
  tables: z.array(tableName).optional(),
  chunk_time: duration.default(500),
  max_lag: duration.default(5000),
  schema: schemaName.default('switchyard'),
});

const backupSchema = z.strictObject({
  dir: z.string().min(1),
  schedule: cronExpression.optional(),
  method: z.enum(['mariabackup']).default('mariabackup'),
});

/** What a token may do; see src/api/scopes.ts for the endpoints behind each. */
export const SCOPES = ['read', 'alerts', 'operate', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

const scopedToken = z
  .strictObject({
    name,
    file: secretFile,
    env: secretEnv,
    scopes: z
      .array(z.enum(SCOPES))
      .min(1, 'list at least one scope: read, alerts, operate or admin'),
  })
  .superRefine((value, ctx) => {
    if (value.file === undefined && value.env === undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['file'],
        message: 'set file or env (tokens are never written inline)',
      });
    else if (value.file !== undefined && value.env !== undefined)
      ctx.addIssue({ code: 'custom', path: ['env'], message: 'set only one of file and env' });
  });

/**
 * API tokens. `token_file`/`token_env` is one admin-scoped token named "admin" (the original
 * single-token setup); `tokens` adds named tokens with scopes, so the Alertmanager's token
 * cannot move the writer and a dashboard's token cannot change anything.
 */
const authSchema = z
  .strictObject({
    token_file: secretFile,
    token_env: secretEnv,
    tokens: z.array(scopedToken).optional(),
  })
  .superRefine((value, ctx) => {
    if (
      value.token_file === undefined &&
      value.token_env === undefined &&
      (value.tokens ?? []).length === 0
    ) {
      ctx.addIssue({
        code: 'custom',
        path: ['token_file'],
        message:
          'set token_file, token_env or tokens: the webhook and control API always require a token',
      });
    }
    if (value.token_file !== undefined && value.token_env !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['token_env'],
        message: 'set only one of token_file and token_env',
      });
    }
    const seen = new Set<string>(
      value.token_file !== undefined || value.token_env !== undefined ? ['admin'] : [],
    );
    (value.tokens ?? []).forEach((token, index) => {
      if (seen.has(token.name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['tokens', index, 'name'],
          message:
            token.name === 'admin' &&
            !value.tokens?.slice(0, index).some((other) => other.name === 'admin')
              ? '"admin" is the name of auth.token_file/token_env; choose another name'
              : `token name "${token.name}" is used twice`,
        });
      }
      seen.add(token.name);
    });
  });

/** The audit journal in state_dir: rotated by size so it does not grow forever. */
const journalSchema = z.strictObject({
  max_size: size
    .pipe(z.number().min(64 * 1024, 'must be at least 64KiB'))
    .default(64 * 1024 * 1024),
  keep: z
    .number()
    .int()
    .min(1, 'keep at least one rotated file: the journal is the audit trail')
    .max(1000)
    .default(5),
});

/**
 * Several managers for one cluster (optional). Leadership is an etcd lease plus an election key
 * per cluster; the cluster state lives in etcd behind revision checks; the leader's term is the
 * fencing token every agent request carries. Without `ha`, one manager with file state.
 */
const etcdEndpoint = z.string().refine((text) => /^https?:\/\/[^\s/]+(:\d+)?\/?$/.test(text), {
  message: 'must be an http(s) URL such as http://10.0.0.5:2379',
});
const haSchema = z.strictObject({
  etcd: z
    .strictObject({
      endpoints: z.array(etcdEndpoint).min(1, 'at least one etcd endpoint is required'),
      prefix: z
        .string()
        .regex(
          /^\/[A-Za-z0-9_./-]*$/,
          'must start with "/" and use letters, digits, "_", ".", "-", "/"',
        )
        .default('/switchyard'),
      ca_file: z.string().min(1).optional(),
      cert_file: z.string().min(1).optional(),
      key_file: z.string().min(1).optional(),
      username: z.string().min(1).optional(),
      password_file: secretFile,
      /** Per-request deadline towards etcd. */
      timeout: duration.default(1000),
    })
    .superRefine((value, ctx) => {
      if ((value.cert_file === undefined) !== (value.key_file === undefined)) {
        ctx.addIssue({
          code: 'custom',
          path: [value.cert_file === undefined ? 'cert_file' : 'key_file'],
          message: 'cert_file and key_file go together (client certificate)',
        });
      }
      if (value.cert_file !== undefined && value.ca_file === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['ca_file'],
          message: 'a client certificate needs ca_file (TLS to etcd)',
        });
      }
      if ((value.username === undefined) !== (value.password_file === undefined)) {
        ctx.addIssue({
          code: 'custom',
          path: [value.username === undefined ? 'username' : 'password_file'],
          message: 'username and password_file go together',
        });
      }
      const tls = value.endpoints.some((url) => url.startsWith('https:'));
      if (tls && value.ca_file === undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['ca_file'],
          message: 'https endpoints need ca_file',
        });
      if (!tls && value.ca_file !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['endpoints'],
          message: 'ca_file is set but the endpoints are http: use https:// URLs',
        });
    }),
  /** etcd leases are whole seconds: the leader stops acting within this when it cannot renew. */
  lease: duration
    .pipe(
      z
        .number()
        .min(2000, "must be at least 2s (etcd's minimum lease)")
        .refine((ms) => ms % 1000 === 0, { message: 'must be whole seconds (etcd leases are)' }),
    )
    .default(5000),
  /** The URL followers send clients to; default http(s)://LISTEN (the host name for 0.0.0.0). */
  advertise_url: httpUrl.optional(),
});

export const MODES = ['active', 'passive', 'manual'] as const;
export type Mode = (typeof MODES)[number];

const hookArgv = z
  .array(z.string().min(1, 'an argument must not be empty'))
  .min(1, 'give the program and its arguments as a list, e.g. [/usr/local/bin/update-consul]');
const hooksSchema = z.strictObject({
  pre_failover: hookArgv.optional(),
  post_failover: hookArgv.optional(),
  /** A non-zero exit aborts the switchover before anything changed. */
  pre_switchover: hookArgv.optional(),
  post_switchover: hookArgv.optional(),
  on_state_change: hookArgv.optional(),
  /** Each run is killed (its whole process group) after this. */
  timeout: duration.default(10_000),
  /** Whether a failing pre_failover hook stops the failover; by default only journalled. */
  pre_failover_aborts: z.boolean().default(false),
});

/** An HAProxy runtime API: a unix socket's absolute path, or HOST:PORT of its TCP form. */
const haproxyAddress = z
  .string()
  .min(1)
  .refine(
    (text) => text.startsWith('/') || /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}$/.test(text),
    {
      message:
        'must be the admin socket\'s absolute path (/run/haproxy/admin.sock) or HOST:PORT of a "stats socket ipv4@..." line',
    },
  );
const haproxyName = z
  .string()
  .regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'must be 1-64 letters, digits, "_", ".", ":" or "-"');
/**
 * HAProxy driven through its runtime API (docs/routing.md): every cycle the manager declares each
 * backend's servers (named as the hosts) ready or maint by the roles, and pushes the change inside
 * a failover or switchover after the fence.
 */
const routingSchema = z.strictObject({
  haproxy: z
    .strictObject({
      instances: z
        .array(
          z.strictObject({
            name: haproxyName,
            address: haproxyAddress,
            /** Per command; an instance that does not answer within it never holds a failover. */
            timeout: duration
              .refine((ms) => ms >= 50 && ms <= 10_000, { message: 'must be between 50ms and 10s' })
              .default(1000),
          }),
        )
        .min(1, 'list at least one HAProxy instance')
        .superRefine((instances, ctx) => {
          const seen = new Set<string>();
          instances.forEach((instance, index) => {
            if (seen.has(instance.name))
              ctx.addIssue({
                code: 'custom',
                path: [index, 'name'],
                message: `"${instance.name}" is named twice: each instance needs its own name (the metrics' proxy label)`,
              });
            seen.add(instance.name);
          });
        }),
      /** role -> the backend whose servers (named as the hosts) follow that role. */
      backends: z.record(name, haproxyName).refine((backends) => Object.keys(backends).length > 0, {
        message: 'name the backend of at least one role, e.g. { writer: mysql_writer }',
      }),
    })
    .optional(),
});
export type RoutingConfig = z.output<typeof routingSchema>;
export type HaproxyConfig = NonNullable<RoutingConfig['haproxy']>;

export const configSchema = z.strictObject({
  cluster: name,
  mysql: mysqlSchema,
  hosts: z
    .record(name, hostSchema)
    .refine((hosts) => Object.keys(hosts).length > 0, { message: 'at least one host is required' }),
  roles: z.record(name, roleSchema).default({}),
  monitor: monitorSchema.default(monitorSchema.parse({})),
  heartbeat: z
    .strictObject({
      schema: z
        .string()
        .regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, 'must be a plain schema name')
        .default('switchyard'),
      interval: duration.default(500),
    })
    .default({ schema: 'switchyard', interval: 500 }),
  listen: listenAddress.default('0.0.0.0:9105'),
  /** HTTPS on `listen` (re-read when the files change). */
  tls: serverTlsSchema.optional(),
  /** A second, plain-HTTP listener serving only /metrics and /healthz (for scrapers without TLS). */
  metrics_listen: listenAddress.optional(),
  auth: authSchema,
  metrics_auth: z.boolean().default(false),
  mode: z.enum(MODES).default('active'),
  triggers: z
    .strictObject({
      alertmanager: z.boolean().default(true),
      monitor: z.boolean().default(true),
      pipeline_timeout: duration.default(120_000),
      /** Alertmanager's base URL: its active silences put hosts in maintenance (src/maintenance). */
      alertmanager_url: z
        .string()
        .url()
        .refine((value) => /^https?:\/\//.test(value), 'must be an http:// or https:// URL')
        .optional(),
    })
    .default({ alertmanager: true, monitor: true, pipeline_timeout: 120_000 }),
  rules: z.array(ruleSchema).default([]),
  actuator: z
    .strictObject({
      vip: z
        .strictObject({
          interface: z
            .string()
            .regex(/^[A-Za-z0-9_.@-]{1,15}$/, 'must be a network interface name'),
          prefix: z.number().int().min(8).max(32).default(24),
        })
        .optional(),
      snapshot: z.strictObject({ method: snapshotMethod }).optional(),
      fence_grace: duration.default(0),
      catchup_timeout: duration.default(30_000),
      /** Bearer token the manager presents to agents; falls back to auth.token_* when neither is set. */
      agent_token_file: secretFile,
      agent_token_env: secretEnv,
      /** Per-request timeout towards agents; a VIP add/remove is retried (it is idempotent) within agent_retries. */
      /** HTTPS to agents: the CA their certificates are checked against, and the manager's client certificate for mutual TLS. */
      agent_ca_file: z.string().min(1).optional(),
      agent_cert_file: z.string().min(1).optional(),
      agent_key_file: z.string().min(1).optional(),
      agent_timeout: duration.default(3000),
      agent_retries: z.number().int().min(0).max(10).default(2),
    })
    .superRefine((value, ctx) => {
      if (value.agent_token_file !== undefined && value.agent_token_env !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['agent_token_env'],
          message: 'set only one of agent_token_file and agent_token_env',
        });
      }
      if ((value.agent_cert_file === undefined) !== (value.agent_key_file === undefined)) {
        ctx.addIssue({
          code: 'custom',
          path: [value.agent_cert_file === undefined ? 'agent_cert_file' : 'agent_key_file'],
          message:
            "agent_cert_file and agent_key_file go together (the manager's client certificate for agents)",
        });
      }
    })
    .default({ fence_grace: 0, catchup_timeout: 30_000, agent_timeout: 3000, agent_retries: 2 }),
  /**
   * Invariant 7: the writer's agent fences its host when it has reached no majority of the voters
   * (managers, every host's agent, itself) for this long; a new writer is promoted only after the
   * old one's lease has certainly run out.
   */
  lease: duration.default(3000),
  failover: z
    .strictObject({
      /**
       * A writer beats no writer: when the writer is dead on evidence and the only candidates with
       * every transaction are held for a restart or flapping (never for divergence or lag), promote
       * the most advanced of them and journal why.
       */
      promote_held: z.boolean().default(true),
    })
    .default({ promote_held: true }),
  /**
   * Programs run around failovers, switchovers and host state changes (argv lists, no shell); the
   * context in SWITCHYARD_* variables and as JSON on stdin. See docs/routing.md.
   */
  hooks: hooksSchema.optional(),
  /** Routers the manager drives beside or instead of VIPs (HAProxy's runtime API). */
  routing: routingSchema.optional(),
  state_dir: z.string().min(1).default('/var/lib/switchyard'),
  journal: journalSchema.default({ max_size: 64 * 1024 * 1024, keep: 5 }),
  checksum: checksumSchema.default({ chunk_time: 500, max_lag: 5000, schema: 'switchyard' }),
  backup: backupSchema.optional(),
  ha: haSchema.optional(),
});

export type RawConfig = z.input<typeof configSchema>;
export type Config = z.output<typeof configSchema>;
export type HostConfig = Config['hosts'][string];
export type RoleConfig = Config['roles'][string];
export type RuleConfig = Config['rules'][number];
export type HaConfig = NonNullable<Config['ha']>;

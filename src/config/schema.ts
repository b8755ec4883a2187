import { isIP } from 'node:net';
import cron from 'node-cron';
import { z } from 'zod';
import { parseDuration } from './duration.js';
import { parseSize } from './size.js';
// Each key says what it is with `.meta({ description, example })` as its last call (KeyMeta in
// ./key-docs.ts); the configuration reference and `switchyard config example` are built from it.

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
  })
  .meta({ valueType: 'duration' });

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
  })
  .meta({ valueType: 'size' });

const name = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'must be letters, digits, "_", "." or "-" (max 63)')
  .meta({ valueType: 'name (letters, digits, _ . -)' });
const ipv4 = z
  .string()
  .refine((text) => isIP(text) === 4, { message: 'must be an IPv4 address' })
  .meta({ valueType: 'IPv4 address' });
const hostAddress = z
  .string()
  .regex(/^[A-Za-z0-9.:-]+$/, 'must be an IP address or a DNS name')
  .meta({ valueType: 'IP address or DNS name' });
const port = z.number().int().min(1).max(65535);
const httpUrl = z
  .string()
  .refine((text) => /^https?:\/\/[^\s/]+(:\d+)?\/?$/.test(text), {
    message: 'must be an http(s) URL such as http://10.0.0.11:9106',
  })
  .meta({ valueType: 'http(s) URL' });
const listenAddress = z
  .string()
  .refine(
    (text) => /^[A-Za-z0-9.:[\]-]*:\d{1,5}$/.test(text) && Number(text.split(':').pop()) <= 65535,
    {
      message: 'must be HOST:PORT, such as 0.0.0.0:9105',
    },
  )
  .meta({ valueType: 'HOST:PORT' });
/** A path to a file; relative paths are resolved against the config file's folder. */
const filePath = z.string().min(1).meta({ valueType: 'file path' });

/** Secrets come only from a file or the environment; never inline, so they never land in a repo or `ps`. */
const secretFile = filePath.optional();
const secretEnv = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name')
  .meta({ valueType: 'environment variable name' })
  .optional();

/** HTTPS for a listener: its certificate and key; with client_ca_file, clients must present a certificate it signed. */
export const serverTlsSchema = z.strictObject({
  cert_file: filePath.meta({
    description:
      "The listener's certificate (PEM, with any intermediates); re-read when it changes.",
    example: '/etc/switchyard/tls/server.crt',
  }),
  key_file: filePath.meta({
    description: "The certificate's private key (PEM); must be readable by its owner only.",
    example: '/etc/switchyard/tls/server.key',
  }),
  client_ca_file: filePath.optional().meta({
    description:
      'Mutual TLS: clients must present a certificate signed by this CA (PEM); without it any client may connect and the bearer token alone authenticates.',
    example: '/etc/switchyard/tls/clients-ca.crt',
  }),
});

const mysqlSchema = z
  .strictObject({
    user: z.string().min(1).meta({
      description:
        'The account the manager uses on every host for checks, the heartbeat and (without admin_user) read_only changes and KILLs.',
      example: 'switchyard',
    }),
    password_file: secretFile.meta({
      description: 'File holding the password of `user`; set this or password_env.',
      example: '/etc/switchyard/mysql.pass',
      exampleEnabled: true,
    }),
    password_env: secretEnv.meta({
      description:
        'Environment variable holding the password of `user`; set this or password_file.',
      example: 'SWITCHYARD_MYSQL_PASSWORD',
    }),
    replication_user: z.string().min(1).meta({
      description:
        'The account replicas connect to their master with when Switchyard repoints replication (CHANGE MASTER).',
      example: 'repl',
    }),
    replication_password_file: secretFile.meta({
      description:
        'File holding the password of replication_user; set this or replication_password_env.',
      example: '/etc/switchyard/repl.pass',
      exampleEnabled: true,
    }),
    replication_password_env: secretEnv.meta({
      description:
        'Environment variable holding the password of replication_user; set this or replication_password_file.',
      example: 'SWITCHYARD_REPL_PASSWORD',
    }),
    /**
     * Optional account for the actuator's read_only changes and KILLs. In MariaDB 10.11 setting
     * read_only needs READ_ONLY ADMIN, which also lets that account write to a read-only host; so
     * the everyday `user` (heartbeat, checks) can stay without it. Defaults to `user`.
     */
    admin_user: z.string().min(1).optional().meta({
      description:
        'Optional account for read_only changes and KILLs only. Setting read_only needs READ_ONLY ADMIN, which also lets an account write to a read-only host, so the everyday `user` can stay without it. Defaults to `user`.',
      example: 'switchyard_admin',
      defaultText: 'the value of `user`',
    }),
    admin_password_file: secretFile.meta({
      description: 'File holding the password of admin_user; set this or admin_password_env.',
      example: '/etc/switchyard/mysql-admin.pass',
    }),
    admin_password_env: secretEnv.meta({
      description:
        'Environment variable holding the password of admin_user; set this or admin_password_file.',
      example: 'SWITCHYARD_MYSQL_ADMIN_PASSWORD',
    }),
    /** TLS on every manager connection; replication: also for the replication Switchyard sets up. */
    tls: z
      .strictObject({
        ca_file: filePath.meta({
          description:
            "The CA (PEM) that servers' certificates are checked against. With `replication`, it must be at this same path on every database host.",
          example: '/etc/switchyard/tls/mysql-ca.crt',
        }),
        cert_file: filePath.optional().meta({
          description:
            "The manager's client certificate (PEM), for servers that require one; goes with key_file.",
          example: '/etc/switchyard/tls/mysql-client.crt',
        }),
        key_file: filePath.optional().meta({
          description: "The client certificate's private key (PEM); goes with cert_file.",
          example: '/etc/switchyard/tls/mysql-client.key',
        }),
        verify_identity: z.boolean().default(true).meta({
          description:
            "Also require the server's certificate to name the host's `address` (an IP address needs an IP subjectAltName).",
        }),
        replication: z.boolean().default(false).meta({
          description:
            'Also encrypt the replication Switchyard sets up: every CHANGE MASTER adds MASTER_SSL=1, MASTER_SSL_CA=ca_file and MASTER_SSL_VERIFY_SERVER_CERT=verify_identity.',
        }),
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
      .optional()
      .meta({
        description:
          'TLS on every connection the manager makes to a host (monitor, heartbeat, read_only changes, fencing, repoints, checksums), verified against ca_file.',
      }),
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
  address: hostAddress.meta({
    description:
      "Where the manager reaches the host's MySQL server; also what replicas of it are pointed at.",
    example: '10.0.0.11',
  }),
  port: port.default(3306).meta({ description: "The MySQL server's port." }),
  peer: z.string().optional().meta({
    description:
      'The other master of a master-master pair; both hosts must name each other. A writer candidate.',
    example: 'db2',
  }),
  replica_of: z.string().optional().meta({
    description:
      'Makes the host a plain replica: `writer` (it follows whichever host holds the writer role) or a host name. A replica never becomes the writer.',
    example: 'writer',
  }),
  agent: httpUrl.optional().meta({
    description:
      "URL of the host's agent (`switchyard agent`): VIPs, the writer lease, the second opinion on a dead writer, clones and backups. Without one the host has no writer lease.",
    example: 'http://10.0.0.11:9106',
  }),
});

const roleSchema = z.strictObject({
  exclusive: z.boolean().default(false).meta({
    description:
      "Held by exactly one host at a time (the writer role); otherwise the role's IPs are spread over its ONLINE hosts.",
  }),
  hosts: z
    .array(z.string())
    .min(1, 'a role needs at least one host')
    .meta({
      description: 'The hosts that may hold the role.',
      example: ['db1', 'db2'],
    }),
  ips: z
    .array(ipv4)
    .default([])
    .meta({
      description:
        'Virtual IPs that follow the role (an exclusive role has at most one). May be empty when routing uses the health endpoints or hooks instead.',
      example: ['10.0.0.100'],
    }),
  prefer: z.string().optional().meta({
    description:
      'For an exclusive role: the host that gets the role back by itself (a planned switchover) whenever it is ONLINE again.',
    example: 'db1',
  }),
});

const monitorSchema = z.strictObject({
  interval: duration.default(1000).meta({ description: 'How often every host is checked.' }),
  connect_timeout: duration.default(1000).meta({
    description: 'How long a check waits for a connection to a host.',
  }),
  check_timeout: duration.optional().meta({
    description:
      'How long a whole check (connect and queries) may take before it counts as failed.',
    example: '2s',
    defaultText: '2 x connect_timeout',
  }),
  failures_before_down: z.number().int().min(1).max(100).default(3).meta({
    description:
      'Consecutive failed checks before a host is HARD_OFFLINE (a refused port counts at once).',
  }),
  max_lag: duration.default(10_000).meta({
    description: 'Replication lag (heartbeat) above which a host goes REPLICATION_DELAY.',
  }),
  auto_set_online: duration.default(60_000).meta({
    description:
      'A host back from an outage shorter than this, that did not restart, is set ONLINE by itself; 0 = never. Never applies to a host with errant transactions.',
  }),
  /** A host held for errant transactions is saved and rebuilt by itself (rejoin --discard-errant); default false. */
  auto_rejoin: z.boolean().optional().meta({
    description:
      'A returning old writer held for errant transactions has them saved and is rebuilt as a replica by itself (as `rejoin --discard-errant`).',
    example: true,
    defaultText: 'false',
  }),
  flap: z
    .strictObject({
      count: z.number().int().min(2).default(3).meta({
        description: 'Failures within `window` that make a host flapping (held for the operator).',
      }),
      window: duration.default(600_000).meta({ description: 'The window flapping is counted in.' }),
    })
    .default({ count: 3, window: 600_000 })
    .meta({
      description: 'A host that keeps failing and coming back is held in AWAITING_RECOVERY.',
    }),
  ping_ips: z
    .array(ipv4)
    .default([])
    .meta({
      description:
        "The manager's own network check: when none of these answers, the manager freezes (changes no state, sends nothing to agents) instead of blaming the hosts.",
      example: ['10.0.0.1'],
    }),
});

const ruleSchema = z
  .strictObject({
    alert: z.string().min(1).meta({
      description: 'The alert name (`alertname` label) the rule applies to.',
      example: 'SwitchyardWriterDown',
    }),
    action: z.enum(['drop_roles', 'move_role']).meta({
      description:
        "drop_roles: the alert's host loses `roles` while it fires, and gets them back when it resolves; move_role: `role` moves away from the alert's host.",
      example: 'move_role',
    }),
    roles: z
      .array(z.string())
      .optional()
      .meta({
        description: 'For drop_roles: the roles the host loses.',
        example: ['reader'],
      }),
    role: z.string().optional().meta({
      description: 'For move_role: the role that moves.',
      example: 'writer',
    }),
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

const cronExpression = z
  .string()
  .refine((text) => cron.validate(text), {
    message: 'must be a cron expression such as "0 3 * * *"',
  })
  .meta({ valueType: 'cron expression (seconds field optional)' });
const schemaName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, 'must be a plain schema name')
  .meta({ valueType: 'schema name' });
const tableName = z
  .string()
  .regex(/^[A-Za-z0-9_$]+(\.([A-Za-z0-9_$]+|\*))?$/, 'must be "db.table", "db.*" or "db"')
  .meta({ valueType: 'db.table, db.* or db' });

const checksumSchema = z.strictObject({
  schedule: cronExpression.optional().meta({
    description: 'When the daemon runs a consistency check by itself; without it, only on demand.',
    example: '0 3 * * *',
  }),
  tables: z
    .array(tableName)
    .optional()
    .meta({
      description: 'The tables checked; without it, every table outside the system schemas.',
      example: ['shop.orders', 'billing.*'],
      defaultText: 'every table outside the system schemas',
    }),
  chunk_time: duration.default(500).meta({
    description:
      'Target time of one chunk: chunk sizes adapt so that each checksum takes about this long.',
  }),
  max_lag: duration.default(5000).meta({
    description: 'The check pauses while a replica lags more than this.',
  }),
  schema: schemaName.default('switchyard').meta({
    description: 'Schema of the checksum results table (created when missing).',
  }),
});

/**
 * What is kept of each host's backups (manager's backup.dir and agents' snapshot.backup_dir alike),
 * applied after every successful backup; src/backup/retention.ts has the rules.
 */
const retentionSchema = z.strictObject({
  keep_full: z
    .number({ error: 'must be a whole number of full backups to keep, such as 7' })
    .int('must be a whole number of full backups to keep, such as 7')
    .min(1, 'must be at least 1: the newest full backup is never removed')
    .default(7)
    .meta({
      description:
        'Full backups kept per host (with their incrementals); older ones are pruned after each backup.',
    }),
  max_age: duration
    .refine((ms) => ms > 0, {
      message: 'must be a positive duration such as "30d" (leave the key out for no age limit)',
    })
    .optional()
    .meta({
      description:
        'Backups whose chain is older than this are pruned (the newest restorable full backup is kept whatever its age); without it, no age limit.',
      example: '30d',
    }),
});

const backupSchema = z.strictObject({
  dir: filePath.meta({
    description:
      "The manager's backup directory: full backups streamed from agents land here (HOST/TIME-full) and errant events saved by rejoin too. Must exist.",
    example: '/var/backups/switchyard',
  }),
  schedule: cronExpression.optional().meta({
    description: 'When the daemon takes backups by itself; without it, only on demand.',
    example: '0 2 * * *',
  }),
  method: z.enum(['mariabackup']).default('mariabackup').meta({
    description: 'How backups are taken.',
  }),
  retention: retentionSchema.prefault({}).meta({
    description:
      "What is kept of each host's backups, here and in every agent's snapshot.backup_dir: pruned after every successful backup; a host's newest restorable full backup is never removed.",
  }),
});

/** What a token may do; see src/api/scopes.ts for the endpoints behind each. */
export const SCOPES = ['read', 'alerts', 'operate', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

const scopedToken = z
  .strictObject({
    name: name.meta({
      description:
        'The token\'s name, shown in the journal for what it did; "admin" is taken by token_file/token_env.',
      example: 'alertmanager',
    }),
    file: secretFile.meta({
      description: 'File holding the token; set this or env.',
      example: '/etc/switchyard/alertmanager.token',
    }),
    env: secretEnv.meta({
      description: 'Environment variable holding the token; set this or file.',
      example: 'SWITCHYARD_ALERTMANAGER_TOKEN',
    }),
    scopes: z
      .array(z.enum(SCOPES))
      .min(1, 'list at least one scope: read, alerts, operate or admin')
      .meta({
        description:
          'What the token may do: read (status, journal, metrics), alerts (the webhook), operate (operator commands), admin (everything).',
        example: ['alerts'],
      }),
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
    token_file: secretFile.meta({
      description:
        'File holding the admin token (all scopes). Also the token the manager presents to agents when actuator.agent_token_* is not set.',
      example: '/etc/switchyard/api.token',
      exampleEnabled: true,
    }),
    token_env: secretEnv.meta({
      description: 'Environment variable holding the admin token; instead of token_file.',
      example: 'SWITCHYARD_TOKEN',
    }),
    tokens: z
      .array(scopedToken)
      .optional()
      .meta({
        description:
          "Named tokens with scopes, so that the Alertmanager's token cannot move the writer and a dashboard's cannot change anything.",
        example: [
          { name: 'alertmanager', file: '/etc/switchyard/alertmanager.token', scopes: ['alerts'] },
          { name: 'grafana', env: 'SWITCHYARD_GRAFANA_TOKEN', scopes: ['read'] },
        ],
      }),
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
    .default(64 * 1024 * 1024)
    .meta({
      description:
        'Before an append would take journal.jsonl past this, it is rotated to journal.jsonl.1 (at least 64KiB). The journal takes at most max_size x (keep + 1) of disk.',
    }),
  keep: z
    .number()
    .int()
    .min(1, 'keep at least one rotated file: the journal is the audit trail')
    .max(1000)
    .default(5)
    .meta({ description: 'How many rotated files are kept; older ones are deleted.' }),
});

/**
 * Several managers for one cluster (optional). Leadership is an etcd lease plus an election key
 * per cluster; the cluster state lives in etcd behind revision checks; the leader's term is the
 * fencing token every agent request carries. Without `ha`, one manager with file state.
 */
const etcdEndpoint = z
  .string()
  .refine((text) => /^https?:\/\/[^\s/]+(:\d+)?\/?$/.test(text), {
    message: 'must be an http(s) URL such as http://10.0.0.5:2379',
  })
  .meta({ valueType: 'http(s) URL' });
const haSchema = z.strictObject({
  etcd: z
    .strictObject({
      endpoints: z
        .array(etcdEndpoint)
        .min(1, 'at least one etcd endpoint is required')
        .meta({
          description: "The etcd cluster's client URLs (https:// needs ca_file).",
          example: ['http://10.0.0.5:2379', 'http://10.0.0.6:2379', 'http://10.0.0.7:2379'],
        }),
      prefix: z
        .string()
        .regex(
          /^\/[A-Za-z0-9_./-]*$/,
          'must start with "/" and use letters, digits, "_", ".", "-", "/"',
        )
        .default('/switchyard')
        .meta({
          description:
            "Key prefix of Switchyard's data in etcd; each cluster lives under PREFIX/CLUSTER.",
        }),
      ca_file: filePath.optional().meta({
        description:
          "The CA (PEM) etcd's certificates are checked against; needed for https endpoints.",
        example: '/etc/switchyard/tls/etcd-ca.crt',
      }),
      cert_file: filePath.optional().meta({
        description: "The manager's client certificate for etcd (PEM); goes with key_file.",
        example: '/etc/switchyard/tls/etcd-client.crt',
      }),
      key_file: filePath.optional().meta({
        description: "The client certificate's private key (PEM); goes with cert_file.",
        example: '/etc/switchyard/tls/etcd-client.key',
      }),
      username: z.string().min(1).optional().meta({
        description: 'etcd user for password authentication; goes with password_file.',
        example: 'switchyard',
      }),
      password_file: secretFile.meta({
        description: "File holding the etcd user's password; goes with username.",
        example: '/etc/switchyard/etcd.pass',
      }),
      /** Per-request deadline towards etcd. */
      timeout: duration.default(1000).meta({ description: 'Deadline of each request to etcd.' }),
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
    })
    .meta({ description: 'The etcd cluster the managers share.' }),
  /** etcd leases are whole seconds: the leader stops acting within this when it cannot renew. */
  lease: duration
    .pipe(
      z
        .number()
        .min(2000, "must be at least 2s (etcd's minimum lease)")
        .refine((ms) => ms % 1000 === 0, { message: 'must be whole seconds (etcd leases are)' }),
    )
    .default(5000)
    .meta({
      description:
        'Leadership lease (whole seconds, at least 2s): a leader that cannot renew it stops acting within this, and another manager takes over after it.',
    }),
  /** The URL followers send clients to; default http(s)://LISTEN (the host name for 0.0.0.0). */
  advertise_url: httpUrl.optional().meta({
    description: 'The URL of this manager that followers send clients to when it leads.',
    example: 'https://manager1.example.net:9105',
    defaultText: 'http(s)://LISTEN, with the host name for 0.0.0.0',
  }),
});

export const MODES = ['active', 'passive', 'manual'] as const;
export type Mode = (typeof MODES)[number];

const hookArgv = z
  .array(z.string().min(1, 'an argument must not be empty'))
  .min(1, 'give the program and its arguments as a list, e.g. [/usr/local/bin/update-consul]')
  .meta({ valueType: 'program and arguments (list)' });
const hooksSchema = z.strictObject({
  pre_failover: hookArgv.optional().meta({
    description:
      'Run before a failover promotes a new writer (e.g. to fence the old one from outside); a failure is journalled and, with pre_failover_aborts, stops the failover.',
    example: ['/usr/local/bin/power-fence'],
  }),
  post_failover: hookArgv.optional().meta({
    description: 'Run after a failover (e.g. to update service discovery).',
    example: ['/usr/local/bin/update-consul'],
  }),
  /** A non-zero exit aborts the switchover before anything changed. */
  pre_switchover: hookArgv.optional().meta({
    description:
      'Run before a planned switchover; a non-zero exit aborts it before anything changed (e.g. to drain the application).',
    example: ['/usr/local/bin/drain-app'],
  }),
  post_switchover: hookArgv.optional().meta({
    description: 'Run after a planned switchover.',
    example: ['/usr/local/bin/update-consul'],
  }),
  on_state_change: hookArgv.optional().meta({
    description: "Run whenever a host's state changes.",
    example: ['/usr/local/bin/notify-state'],
  }),
  /** Each run is killed (its whole process group) after this. */
  timeout: duration.default(10_000).meta({
    description: 'Each hook run is killed (its whole process group) after this.',
  }),
  /** Whether a failing pre_failover hook stops the failover; by default only journalled. */
  pre_failover_aborts: z.boolean().default(false).meta({
    description:
      'Whether a failing pre_failover hook stops the failover; by default it is only journalled (a writer beats no writer).',
  }),
});

/** An HAProxy runtime API: a unix socket's absolute path, or HOST:PORT of its TCP form. */
const haproxyAddress = z
  .string()
  .regex(
    /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}$/,
    'must be HOST:PORT of a "stats socket ipv4@..." line (an admin socket path goes in `socket`)',
  )
  .meta({ valueType: 'HOST:PORT' });
const haproxySocket = z
  .string()
  .refine((text) => text.startsWith('/'), {
    message: "must be the admin socket's absolute path, such as /run/haproxy/admin.sock",
  })
  .meta({ valueType: 'absolute path' });
const haproxyName = z
  .string()
  .regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'must be 1-64 letters, digits, "_", ".", ":" or "-"');
const haproxyInstance = z
  .strictObject({
    address: haproxyAddress.optional().meta({
      description:
        "HAProxy's runtime API over TCP: HOST:PORT of its `stats socket ipv4@...` line (give this or `socket`).",
      example: '10.0.0.21:9999',
    }),
    socket: haproxySocket.optional().meta({
      description:
        "HAProxy's runtime API on its admin socket: the socket's absolute path (give this or `address`).",
      example: '/run/haproxy/admin.sock',
    }),
    name: haproxyName.optional().meta({
      description:
        "The instance's name: the `proxy` label of the route metrics and its name in the journal.",
      defaultText: 'its address or socket',
      example: 'app1',
    }),
    // role -> the backend whose servers (named as the hosts) follow that role.
    backends: z
      .record(name, haproxyName)
      .refine((backends) => Object.keys(backends).length > 0, {
        message: 'name the backend of at least one role, e.g. { writer: mysql_writer }',
      })
      .meta({
        description:
          "Role name to HAProxy backend: the backend's servers are named as the hosts; the role's holders are ready, every other server maint (the writer backend's with their sessions shut down).",
        example: { writer: 'mysql_writer', reader: 'mysql_readers' },
      }),
    // Per command: an instance that does not answer within it never holds a failover.
    timeout: duration
      .refine((ms) => ms >= 50 && ms <= 10_000, { message: 'must be between 50ms and 10s' })
      .default(1000)
      .meta({
        description:
          'How long one runtime-API command may take; an instance that does not answer is journalled route.unreachable and never holds a failover.',
      }),
  })
  .superRefine((instance, ctx) => {
    if ((instance.address === undefined) === (instance.socket === undefined))
      ctx.addIssue({
        code: 'custom',
        path: [],
        message: 'give exactly one of `address` (HOST:PORT) and `socket` (the admin socket path)',
      });
  })
  .transform((instance) => ({
    name: instance.name ?? instance.address ?? (instance.socket as string),
    address: instance.address ?? (instance.socket as string),
    backends: instance.backends,
    timeout: instance.timeout,
  }));
/**
 * HAProxy driven through its runtime API (docs/routing.md): every cycle the manager declares each
 * backend's servers (named as the hosts) ready or maint by the roles, and pushes the change inside
 * each failover and switchover after the fence.
 */
const routingSchema = z.strictObject({
  haproxy: z
    .array(haproxyInstance)
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
    })
    .optional()
    .meta({
      description:
        'HAProxy instances driven through their runtime API (one per application host is common): the wanted server states are declared every cycle, pushed inside each failover and switchover after the fence, and read back (docs/routing.md).',
      example: [{ address: '10.0.0.21:9999', backends: { writer: 'mysql_writer' } }],
    }),
});
export type RoutingConfig = z.output<typeof routingSchema>;
export type HaproxyConfig = NonNullable<RoutingConfig['haproxy']>;
export type HaproxyInstanceConfig = HaproxyConfig[number];

export const configSchema = z.strictObject({
  cluster: name.meta({
    description:
      "The cluster's name: the `cluster` label on every metric and alert, and its key in etcd and in a conf.d directory.",
    example: 'prod',
  }),
  mysql: mysqlSchema.meta({ description: 'The accounts the manager uses on every host.' }),
  hosts: z
    .record(name, hostSchema)
    .refine((hosts) => Object.keys(hosts).length > 0, { message: 'at least one host is required' })
    .meta({
      description: "The database hosts, by name: two masters (each other's peer) and any replicas.",
      example: {
        db1: { address: '10.0.0.11', port: 3306, peer: 'db2', agent: 'http://10.0.0.11:9106' },
        db2: { address: '10.0.0.12', port: 3306, peer: 'db1', agent: 'http://10.0.0.12:9106' },
        db3: {
          address: '10.0.0.13',
          port: 3306,
          replica_of: 'writer',
          agent: 'http://10.0.0.13:9106',
        },
      },
    }),
  roles: z
    .record(name, roleSchema)
    .default({})
    .meta({
      description:
        'Roles by name, each with the hosts that may hold it and its virtual IPs. Only ONLINE hosts hold roles.',
      example: {
        writer: { exclusive: true, hosts: ['db1', 'db2'], ips: ['10.0.0.100'], prefer: 'db1' },
        reader: {
          hosts: ['db1', 'db2', 'db3'],
          ips: ['10.0.0.101', '10.0.0.102', '10.0.0.103'],
        },
      },
    }),
  monitor: monitorSchema
    .default(monitorSchema.parse({}))
    .meta({ description: 'How hosts are checked and when their state changes.' }),
  heartbeat: z
    .strictObject({
      schema: z
        .string()
        .regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, 'must be a plain schema name')
        .default('switchyard')
        .meta({ description: 'Schema of the heartbeat table (created when missing).' }),
      interval: duration.default(500).meta({
        description: 'How often the manager writes the heartbeat row on the writer.',
      }),
    })
    .default({ schema: 'switchyard', interval: 500 })
    .meta({
      description:
        'The row the manager writes on the writer and reads on every replica: sub-second replication lag.',
    }),
  listen: listenAddress.default('0.0.0.0:9105').meta({
    description:
      'Address of the HTTP listener: /metrics, the Alertmanager webhook, the control API.',
  }),
  /** HTTPS on `listen` (re-read when the files change). */
  tls: serverTlsSchema.optional().meta({
    description:
      'HTTPS on `listen`; with client_ca_file, mutual TLS. The files are re-read when they change.',
  }),
  /** A second, plain-HTTP listener serving only /metrics and /healthz (for scrapers without TLS). */
  metrics_listen: listenAddress.optional().meta({
    description:
      'A second, plain-HTTP listener serving only /metrics and /healthz, for scrapers that cannot use TLS.',
    example: '127.0.0.1:9107',
  }),
  auth: authSchema.meta({
    description:
      'API tokens: the webhook and the control API always require a bearer token. Set token_file, token_env or tokens.',
  }),
  metrics_auth: z.boolean().default(false).meta({
    description: '/metrics on `listen` (and metrics_listen) requires a bearer token too.',
  }),
  mode: z.enum(MODES).default('active').meta({
    description:
      'active: acts; passive: decides and journals only (dry run); manual: only operator commands act, read_only is still enforced. Changed at run time with `switchyard mode`.',
  }),
  triggers: z
    .strictObject({
      alertmanager: z.boolean().default(true).meta({
        description: 'Alerts received on the webhook may act (through `rules`).',
      }),
      monitor: z.boolean().default(true).meta({
        description:
          'The built-in monitor may act by itself. With it off, the monitor still acts when the alerting pipeline is down (pipeline_timeout).',
      }),
      pipeline_timeout: duration.default(120_000).meta({
        description:
          'With no webhook and no Watchdog alert for this long, the alerting pipeline counts as down and the monitor decides alone.',
      }),
      /** Alertmanager's base URL: its active silences put hosts in maintenance (src/maintenance). */
      alertmanager_url: z
        .string()
        .url()
        .refine((value) => /^https?:\/\//.test(value), 'must be an http:// or https:// URL')
        .optional()
        .meta({
          description:
            "Alertmanager's base URL: its active silences matching a host's {cluster, host} (or the whole cluster) hold automation off that host as maintenance windows.",
          example: 'http://127.0.0.1:9093',
        }),
    })
    .default({ alertmanager: true, monitor: true, pipeline_timeout: 120_000 })
    .meta({ description: 'What may start an automatic change: alerts, the monitor, or both.' }),
  rules: z
    .array(ruleSchema)
    .default([])
    .meta({
      description:
        'Alert name to role rule: what an alert from Alertmanager does. The live state is re-checked before anything happens.',
      example: [
        { alert: 'SwitchyardReplicationLagHigh', action: 'drop_roles', roles: ['reader'] },
        { alert: 'SwitchyardReplicationBroken', action: 'drop_roles', roles: ['reader'] },
        { alert: 'SwitchyardWriterDown', action: 'move_role', role: 'writer' },
      ],
    }),
  actuator: z
    .strictObject({
      vip: z
        .strictObject({
          interface: z
            .string()
            .regex(/^[A-Za-z0-9_.@-]{1,15}$/, 'must be a network interface name')
            .meta({
              description: 'The network interface the agents put VIPs on.',
              example: 'eth0',
            }),
          prefix: z.number().int().min(8).max(32).default(24).meta({
            description: 'Prefix length the VIPs are added with.',
          }),
        })
        .optional()
        .meta({
          description:
            'Move role IPs through the agents (needed when hosts have agents and roles have IPs). Without it, role IPs are bookkeeping only: assigned, exported and shown, no interface touched (the sandbox runs so).',
          exampleEnabled: true,
        }),
      snapshot: z
        .strictObject({
          method: snapshotMethod.meta({
            description: 'Snapshot method for sandbox clones and backups; agents name their own.',
            example: 'mariabackup',
          }),
        })
        .optional()
        .meta({ description: 'Snapshots taken directly by the manager (sandbox hosts).' }),
      fence_grace: duration.default(0).meta({
        description:
          "Time given to the old writer's client sessions to finish after read_only=ON before they are killed in a fence.",
      }),
      catchup_timeout: duration.default(30_000).meta({
        description:
          "How long a switchover waits for the target to apply the old writer's last transaction; then the old writer gets its writes back and the move fails.",
      }),
      /** Bearer token the manager presents to agents; falls back to auth.token_* when neither is set. */
      agent_token_file: secretFile.meta({
        description:
          'File holding the token the manager presents to agents (the same on every agent).',
        example: '/etc/switchyard/agent.token',
        defaultText: 'auth.token_file / token_env',
      }),
      agent_token_env: secretEnv.meta({
        description: 'Environment variable holding the agent token; instead of agent_token_file.',
        example: 'SWITCHYARD_AGENT_TOKEN',
      }),
      /** HTTPS to agents: the CA their certificates are checked against, and the manager's client certificate for mutual TLS. */
      agent_ca_file: filePath.optional().meta({
        description: 'HTTPS to agents: the CA (PEM) their certificates are checked against.',
        example: '/etc/switchyard/tls/agents-ca.crt',
      }),
      agent_cert_file: filePath.optional().meta({
        description:
          "The manager's client certificate (PEM) for agents that require mutual TLS; goes with agent_key_file.",
        example: '/etc/switchyard/tls/manager.crt',
      }),
      agent_key_file: filePath.optional().meta({
        description: "The client certificate's private key (PEM); goes with agent_cert_file.",
        example: '/etc/switchyard/tls/manager.key',
      }),
      agent_timeout: duration
        .default(3000)
        .meta({ description: 'Deadline of each request to an agent.' }),
      agent_retries: z.number().int().min(0).max(10).default(2).meta({
        description:
          "Retries of an idempotent agent request (VIP add or remove) that failed, in a failover, a switchover or an operator's move; a monitor cycle's own moves try once, within agent_timeout or monitor.interval (at least 1 s).",
      }),
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
    .default({ fence_grace: 0, catchup_timeout: 30_000, agent_timeout: 3000, agent_retries: 2 })
    .meta({ description: 'How the manager acts on hosts: VIPs, fencing, switchovers, agents.' }),
  /**
   * Invariant 7: the writer's agent fences its host when it has reached no majority of the voters
   * (managers, every host's agent, itself) for this long; a new writer is promoted only after the
   * old one's lease has certainly run out.
   */
  lease: duration.default(3000).meta({
    description:
      "The writer's agent fences its host (read_only, sessions killed, VIP removed) when it reached no majority of the voters (managers, every host's agent, itself) for this long; a new writer is promoted only after the old one's lease has certainly run out. At least 2 x monitor.interval.",
  }),
  failover: z
    .strictObject({
      /**
       * A writer beats no writer: when the writer is dead on evidence and the only candidates with
       * every transaction are held for a restart or flapping (never for divergence or lag), promote
       * the most advanced of them and journal why.
       */
      promote_held: z.boolean().default(true).meta({
        description:
          'A writer beats no writer: when the only candidates with every transaction are held for a restart or flapping (never for divergence or lag), promote the most advanced of them and journal why.',
      }),
    })
    .default({ promote_held: true })
    .meta({ description: 'How a failover chooses among candidates.' }),
  /**
   * Programs run around failovers, switchovers and host state changes (argv lists, no shell); the
   * context in SWITCHYARD_* variables and as JSON on stdin. See docs/routing.md.
   */
  hooks: hooksSchema.optional().meta({
    description:
      'Programs run around failovers, switchovers and state changes: argument lists run without a shell, with the context in SWITCHYARD_* variables and as JSON on stdin.',
  }),
  routing: routingSchema.optional().meta({
    description:
      'Routers the manager drives beside or instead of VIPs: HAProxy through its runtime API, declared every cycle and pushed inside each failover and switchover after the fence.',
  }),
  state_dir: filePath.default('/var/lib/switchyard').meta({
    description:
      "Where the cluster state and the audit journal live (survives restarts); relative to the config file's folder when relative.",
  }),
  journal: journalSchema
    .default({ max_size: 64 * 1024 * 1024, keep: 5 })
    .meta({ description: 'The audit journal (state_dir/journal.jsonl), rotated by size.' }),
  checksum: checksumSchema
    .default({ chunk_time: 500, max_lag: 5000, schema: 'switchyard' })
    .meta({ description: 'Consistency checks between the writer and its replicas.' }),
  backup: backupSchema.optional().meta({
    description: "The manager's backups: where they are kept and when they are taken.",
  }),
  ha: haSchema.optional().meta({
    description:
      'Several managers for one cluster, sharing leadership and state through etcd. Without it, one manager keeps its state in state_dir.',
  }),
});

export type RawConfig = z.input<typeof configSchema>;
export type Config = z.output<typeof configSchema>;
export type HostConfig = Config['hosts'][string];
export type RoleConfig = Config['roles'][string];
export type RuleConfig = Config['rules'][number];
export type HaConfig = NonNullable<Config['ha']>;

import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import type { LocalServer } from '../snapshot/command.js';

/**
 * Agent-file keys for clone/restore through the agent (issue 14): how the agent reaches its own
 * server, which replication account a reseeded copy uses, and how the server is stopped and started.
 */

/** A program and its arguments, run without a shell. */
const argv = z.array(z.string().min(1, 'an argument must not be empty')).min(1, 'give the program and its arguments as a list, e.g. [systemctl, stop, mariadb]');

export const serviceSchema = z.strictObject({
  stop: argv,
  start: argv,
});

export const agentMysqlSchema = z
  .strictObject({
    /** Unix socket of the local server (preferred: the agent runs on the database host). */
    socket: z.string().refine((text) => isAbsolute(text), { message: 'must be an absolute path' }).optional(),
    address: z.string().min(1).optional(),
    port: z.number().int().min(1).max(65535).optional(),
    user: z.string().min(1).default('root'),
    password_file: z.string().min(1).optional(),
    /** The account a reseeded copy replicates from the writer with. */
    replication_user: z.string().min(1),
    replication_password_file: z.string().min(1),
  })
  .superRefine((value, ctx) => {
    if (value.socket === undefined && value.address === undefined) ctx.addIssue({ code: 'custom', path: ['socket'], message: 'set socket or address: how the agent reaches its own server' });
    if (value.socket !== undefined && value.address !== undefined) ctx.addIssue({ code: 'custom', path: ['address'], message: 'set only one of socket and address' });
  });

export type AgentMysql = z.output<typeof agentMysqlSchema>;

/** Password files are relative to the agent file, like auth.token_file. */
export function agentFilePath(source: string, file: string): string {
  return isAbsolute(file) ? file : resolve(dirname(source), file);
}

export function localServerOf(mysql: AgentMysql, source: string): LocalServer {
  return {
    socket: mysql.socket,
    host: mysql.address,
    port: mysql.port,
    user: mysql.user,
    passwordFile: mysql.password_file === undefined ? undefined : agentFilePath(source, mysql.password_file),
  };
}

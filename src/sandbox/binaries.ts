import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

const EXTRA_DIRS = ['/usr/sbin', '/usr/local/sbin', '/usr/local/mysql/bin'];

export interface MariaDbBinaries {
  server: string;
  installDb: string;
  admin: string;
}

export class MissingBinaryError extends Error {
  override name = 'MissingBinaryError';
}

export function findExecutable(names: string[]): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), ...EXTRA_DIRS].filter(Boolean);
  for (const name of names) {
    for (const dir of dirs) {
      const candidate = join(dir, name);
      try {
        accessSync(candidate, constants.X_OK);
        return candidate;
      } catch {
        // keep looking
      }
    }
  }
  return undefined;
}

export function findMariaDbBinaries(): MariaDbBinaries {
  const server = findExecutable(['mariadbd', 'mysqld']);
  const installDb = findExecutable(['mariadb-install-db', 'mysql_install_db']);
  const admin = findExecutable(['mariadb-admin', 'mysqladmin']);
  const missing = [
    !server && 'mariadbd',
    !installDb && 'mariadb-install-db',
    !admin && 'mariadb-admin',
  ].filter(Boolean);
  if (!server || !installDb || !admin) {
    throw new MissingBinaryError(
      `${missing.join(', ')} not found. Install MariaDB: apt-get install mariadb-server mariadb-client ` +
        '(or run scripts/install-deps.sh as root)',
    );
  }
  return { server, installDb, admin };
}

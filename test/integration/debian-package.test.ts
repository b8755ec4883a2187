/**
 * The release packages as an operator meets them: `npm pack` builds the tarball (dist/ built by
 * `prepare`), scripts/build-deb.sh turns it into a .deb with dpkg-deb, and that .deb is installed
 * on this machine with dpkg, used (`switchyard --version`, `config check` of the shipped example),
 * reinstalled over a changed config (kept: a conffile), and purged, leaving only what a purge
 * leaves (the system user, by Debian policy). Root is needed; everything is undone on failure too.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { requireBinaries, requireRoot } from '../support/binaries.js';

const exec = promisify(execFile);
const root = new URL('../../', import.meta.url).pathname;
const version = (
  JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }
).version;
/** What the package installs (besides the system user, which a purge keeps). */
const INSTALLED = [
  '/usr/lib/switchyard',
  '/usr/bin/switchyard',
  '/lib/systemd/system/switchyard.service',
  '/lib/systemd/system/switchyard-agent.service',
  '/etc/switchyard',
  '/var/lib/switchyard',
  '/usr/share/doc/switchyard',
];

async function run(
  command: string,
  args: string[],
  options: { cwd?: string } = {},
): Promise<{ stdout: string; stderr: string }> {
  try {
    return await exec(command, args, { ...options, maxBuffer: 64 * 1024 * 1024 });
  } catch (error) {
    const failed = error as Error & { stdout?: string; stderr?: string };
    throw new Error(
      `${command} ${args.join(' ')} failed: ${failed.message}\n${failed.stdout ?? ''}\n${failed.stderr ?? ''}`,
      { cause: error },
    );
  }
}

async function packageStatus(): Promise<string> {
  try {
    return (await exec('dpkg-query', ['-W', '-f=${Status}', 'switchyard'])).stdout;
  } catch {
    return 'unknown';
  }
}

async function userExists(name: string): Promise<boolean> {
  return exec('getent', ['passwd', name]).then(
    () => true,
    () => false,
  );
}

test('npm pack and the Debian package: install, run, keep a changed config on reinstall, purge clean', async (t) => {
  if (
    !requireRoot(t, 'dpkg -i installs into /usr, /etc and /lib') ||
    !requireBinaries(t, [
      ['dpkg-deb', 'dpkg'],
      ['dpkg', 'dpkg'],
      ['npm', 'nodejs'],
      ['adduser', 'adduser'],
    ])
  )
    return;
  // Never touch an operator's install or files this test did not create.
  const before = await packageStatus();
  const present = INSTALLED.filter((path) => existsSync(path));
  if (before.includes('installed') || present.length > 0) {
    t.skip(`this machine already has switchyard (${before}; ${present.join(', ')}): not touched`);
    return;
  }
  const userBefore = await userExists('switchyard');

  const dir = mkdtempSync(join(tmpdir(), 'switchyard-deb-test-'));
  t.after(async () => {
    // Undo everything, whichever step failed: the package, the user this test made, the files.
    if ((await packageStatus()) !== 'unknown')
      await exec('dpkg', ['--purge', 'switchyard']).catch(() => undefined);
    if (!userBefore && (await userExists('switchyard')))
      await exec('deluser', ['--system', '--quiet', 'switchyard']).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  // Packed from a copy: `prepare` writes dist/, and a dist/ left in the checkout would make
  // bin/switchyard.js run it instead of the sources every other test runs.
  const source = join(dir, 'source');
  for (const entry of [
    'bin',
    'src',
    'deploy',
    'alerts',
    'grafana',
    'docs',
    'scripts',
    'README.md',
    'package.json',
    'package-lock.json',
    'tsconfig.json',
    'tsconfig.build.json',
  ])
    cpSync(join(root, entry), join(source, entry), { recursive: true });
  symlinkSync(realpathSync(join(root, 'node_modules')), join(source, 'node_modules'));

  await t.test(
    'npm pack: built dist/, bin/, deploy files, alerts, dashboards, docs; no sources',
    async () => {
      await run('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: source });
      const tarball = join(dir, `switchyard-${version}.tgz`);
      const files = (await run('tar', ['-tzf', tarball])).stdout.split('\n').filter(Boolean);
      for (const wanted of [
        'package/package.json',
        'package/bin/switchyard.js',
        'package/dist/cli/main.js',
        'package/dist/version.js',
        'package/deploy/switchyard.service',
        'package/deploy/switchyard.yml',
        'package/alerts/switchyard.rules.yml',
        'package/grafana/dashboards/switchyard-overview.json',
        'package/docs/deploy.md',
        'package/README.md',
      ])
        assert.ok(files.includes(wanted), `${wanted} in the tarball`);
      const stray = files.filter((file) =>
        /^package\/(src|test|bench|scripts|node_modules)\/|\.map$|\.ts$/.test(file),
      );
      assert.deepEqual(stray, [], 'no sources, tests, maps or node_modules in the tarball');
    },
  );

  const deb = join(dir, `switchyard_${version}_all.deb`);
  let relaxDepends: string[] = [];
  await t.test('build-deb.sh: a .deb with the layout, conffiles and dependencies', async () => {
    const built = await run('bash', [
      join(source, 'scripts/build-deb.sh'),
      '--tarball',
      join(dir, `switchyard-${version}.tgz`),
      '--out',
      dir,
    ]);
    assert.equal(built.stdout.trim(), deb);
    const info = (await run('dpkg-deb', ['-I', deb])).stdout;
    assert.match(info, /Depends: nodejs \(>= 20\)/);
    assert.match(info, /Architecture: all/);
    const conffiles = (await run('dpkg-deb', ['--ctrl-tarfile', deb])).stdout;
    assert.ok(conffiles.includes('conffiles'));
  });

  await t.test('dpkg -i: the command works, nothing runs, /etc/switchyard is private', async () => {
    // A node that no Debian package provides (nvm, a tarball in /usr/local) cannot satisfy
    // "Depends: nodejs (>= 20)": then only that dependency check is relaxed, the rest is real.
    const node = (await run('sh', ['-c', 'command -v node'])).stdout.trim();
    const nodeFromDpkg = await exec('dpkg', ['-S', realpathSync(node)]).then(
      () => true,
      () => false,
    );
    t.diagnostic(`node ${node} ${nodeFromDpkg ? 'is' : 'is NOT'} from a Debian package`);
    relaxDepends = nodeFromDpkg ? [] : ['--force-depends'];
    await run('dpkg', [...relaxDepends, '-i', deb]);
    assert.match(await packageStatus(), /install ok installed/);

    const printed = await run('/usr/bin/switchyard', ['--version']);
    assert.equal(printed.stdout.trim(), version);
    const checked = await run('switchyard', [
      'config',
      'check',
      '-c',
      '/etc/switchyard/switchyard.yml',
    ]);
    assert.match(checked.stdout, /switchyard\.yml: ok/);
    // The full CLI loads from the installed tree with production dependencies only.
    const help = await run('/usr/bin/switchyard', ['agent', '--help']);
    assert.match(help.stdout, /agent/);
    const modules = readdirSync('/usr/lib/switchyard/node_modules');
    for (const dev of ['typescript', 'tsx', 'eslint', 'prettier'])
      assert.ok(!modules.includes(dev), `dev dependency ${dev} not installed`);

    assert.ok(await userExists('switchyard'), 'the switchyard system user exists');
    const etc = statSync('/etc/switchyard');
    assert.equal(etc.mode & 0o777, 0o750);
    const group = (await run('stat', ['-c', '%G', '/etc/switchyard'])).stdout.trim();
    assert.equal(group, 'switchyard');
    const conffiles = (await run('dpkg-query', ['-W', '-f=${Conffiles}', 'switchyard'])).stdout;
    assert.match(conffiles, /\/etc\/switchyard\/switchyard\.yml/);
    assert.match(conffiles, /\/etc\/switchyard\/agent\.yml/);
    for (const unit of ['switchyard.service', 'switchyard-agent.service']) {
      const text = readFileSync(`/lib/systemd/system/${unit}`, 'utf8');
      assert.match(text, /\/usr\/lib\/switchyard\/bin\/switchyard\.js/);
      assert.ok(!text.includes('/opt/switchyard'));
      // Not enabled: no wants link anywhere under /etc/systemd.
      const links = await exec('find', ['/etc/systemd', '-name', unit]).then(
        (found) => found.stdout.trim(),
        () => '',
      );
      assert.equal(links, '', `${unit} is not enabled`);
    }
    // The fleet drop-in comes as an example, pointed at this install, and is not active.
    const fleet = readFileSync('/usr/share/doc/switchyard/examples/switchyard-fleet.conf', 'utf8');
    assert.match(
      fleet,
      /^ExecStart=\/usr\/bin\/node .*\/usr\/lib\/switchyard\/bin\/switchyard\.js run/m,
    );
    assert.ok(!fleet.includes('/opt/switchyard'));
    assert.ok(!existsSync('/lib/systemd/system/switchyard.service.d'));
  });

  await t.test('reinstall (an upgrade): a changed config is kept', async () => {
    const config = '/etc/switchyard/switchyard.yml';
    const changed = `${readFileSync(config, 'utf8')}# changed by the operator\n`;
    writeFileSync(config, changed);
    await run('dpkg', [...relaxDepends, '--force-confold', '-i', deb]);
    assert.equal(readFileSync(config, 'utf8'), changed);
  });

  await t.test('dpkg --purge leaves nothing but the system user', async () => {
    await run('dpkg', ['--purge', 'switchyard']);
    assert.doesNotMatch(await packageStatus(), /installed|config-files/);
    assert.deepEqual(
      INSTALLED.filter((path) => existsSync(path)),
      [],
      'every installed path is gone',
    );
    assert.equal(
      await userExists('switchyard'),
      true,
      'Debian policy: a purge keeps the system user',
    );
  });
});

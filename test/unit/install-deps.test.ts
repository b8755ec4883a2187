import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
const SCRIPT = new URL('../../scripts/install-deps.sh', import.meta.url).pathname;

/**
 * Runs scripts/install-deps.sh with stand-ins for id (root), dpkg-query (every package missing),
 * apt-get (records what policy-rc.d answered during the install) and npm, and with the
 * policy-rc.d path pointed at a scratch file: nothing on this machine is installed or changed.
 */
async function runInstall(
  t: { after(fn: () => void): void },
  options: { aptExit: number; existingPolicy?: string },
) {
  const dir = mkdtempSync(join(tmpdir(), 'sy-install-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const policy = join(dir, 'policy-rc.d');
  const answered = join(dir, 'policy-answer');
  const fake = (name: string, body: string) => {
    writeFileSync(join(dir, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(dir, name), 0o755);
  };
  fake('id', 'echo 0');
  fake('dpkg-query', 'exit 1');
  fake('npm', 'exit 0');
  fake(
    'apt-get',
    `[ "$1" = install ] || exit 0\nif [ -x "${policy}" ]; then "${policy}" mariadb start; echo $? >"${answered}"; else echo none >"${answered}"; fi\nexit ${options.aptExit}`,
  );
  if (options.existingPolicy !== undefined)
    writeFileSync(policy, options.existingPolicy, { mode: 0o755 });
  const result = await run('bash', [SCRIPT], {
    env: {
      ...process.env,
      PATH: `${dir}:${process.env.PATH ?? ''}`,
      SWITCHYARD_POLICY_RC_D: policy,
    },
  }).then(
    () => 0,
    (error: { code: number }) => error.code,
  );
  return {
    code: result,
    policyAfter: existsSync(policy) ? readFileSync(policy, 'utf8') : undefined,
    answered: readFileSync(answered, 'utf8').trim(),
  };
}

test('install-deps: services are forbidden during apt-get install, and the policy-rc.d it wrote is gone afterwards', async (t) => {
  const outcome = await runInstall(t, { aptExit: 0 });
  assert.equal(outcome.code, 0);
  assert.equal(
    outcome.answered,
    '101',
    'policy-rc.d answered "forbidden" while packages were installed',
  );
  assert.equal(outcome.policyAfter, undefined, 'no policy-rc.d left behind');
});

test('install-deps: a failed apt-get install also removes the policy-rc.d it wrote', async (t) => {
  const outcome = await runInstall(t, { aptExit: 100 });
  assert.notEqual(outcome.code, 0);
  assert.equal(outcome.answered, '101');
  assert.equal(outcome.policyAfter, undefined);
});

test("install-deps: a policy-rc.d that was already there (e.g. a Docker image's) is used and left as it was", async (t) => {
  const theirs = "#!/bin/sh\n# the image's own\nexit 101\n";
  const outcome = await runInstall(t, { aptExit: 0, existingPolicy: theirs });
  assert.equal(outcome.code, 0);
  assert.equal(outcome.policyAfter, theirs);
});

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { test } from 'node:test';
import { promisify } from 'node:util';
import pino from 'pino';
import { startAgent, type RunningAgent } from '../../src/agent/agent.js';
import { validateAgentConfig } from '../../src/agent/config.js';
import { AgentClient, AgentError } from '../../src/actuator/agent-client.js';
import { TlsDispatcher, type ClientTlsFiles } from '../../src/net/tls.js';
import { createLogger, silentLogger } from '../../src/log.js';
import { MARIADB, requireBinaries } from '../support/binaries.js';
import { FAST_MONITOR, startDaemon, writeTestConfig } from '../support/daemon.js';
import { RecordingVipDriver } from '../support/recording-vip-driver.js';
import { startSandbox, waitFor } from '../support/sandbox.js';
import { makeTestCa, OPENSSL, type IssuedCert } from '../support/test-ca.js';

const run = promisify(execFile);
const CLI = new URL('../../bin/switchyard.js', import.meta.url).pathname;
const AGENT_TOKEN = 'tls-test-agent-token';

async function tlsAgent(
  dir: string,
  name: string,
  server: IssuedCert,
  clientCa: string,
  ips: string[],
  logFile?: string,
): Promise<{ agent: RunningAgent; driver: RecordingVipDriver }> {
  writeFileSync(join(dir, 'agent.token'), `${AGENT_TOKEN}\n`, { mode: 0o600 });
  const { config, problems } = validateAgentConfig(
    {
      listen: '127.0.0.1:0',
      auth: { token_file: 'agent.token' },
      tls: { cert_file: server.cert, key_file: server.key, client_ca_file: clientCa },
      vip: { interface: 'eth0', ips },
    },
    join(dir, `${name}.yml`),
  );
  assert.ok(config, JSON.stringify(problems));
  const driver = new RecordingVipDriver('eth0');
  const logger = logFile
    ? createLogger('agent', { destination: pino.destination({ dest: logFile, sync: true }) })
    : silentLogger;
  const agent = await startAgent({ config, driver, logger });
  return { agent, driver };
}

function client(url: string, files?: ClientTlsFiles): AgentClient {
  const dispatcher = files ? new TlsDispatcher(files) : undefined;
  return new AgentClient({
    url,
    token: () => AGENT_TOKEN,
    timeoutMs: 3000,
    retries: 0,
    dispatcher: dispatcher && (() => dispatcher.get()),
  });
}

async function refusal(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof AgentError, String(error));
    assert.equal(error.status, undefined, 'refused in the handshake, before any HTTP answer');
    return error.message;
  }
  assert.fail('the request was not refused');
}

/** The certificate a TLS server presents to the next connection. */
function presented(port: number, ca: string, clientCert: IssuedCert): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(
      {
        host: '127.0.0.1',
        port,
        ca: readFileSync(ca),
        cert: readFileSync(clientCert.cert),
        key: readFileSync(clientCert.key),
      },
      () => {
        resolve(socket.getPeerX509Certificate()?.fingerprint256 ?? '');
        socket.end();
      },
    );
    socket.on('error', reject);
  });
}
const fingerprint = (file: string) => new X509Certificate(readFileSync(file)).fingerprint256;

test('an agent requiring client certificates refuses a manager without one or with one from another CA, and rotates its certificate without a restart', async (t) => {
  if (!requireBinaries(t, OPENSSL)) return;
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-tls-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const ca = await makeTestCa(dir, 'cluster');
  const other = await makeTestCa(dir, 'other');
  const serverCert = await ca.issue('agent-server');
  const manager = await ca.issue('manager-client', { cn: 'switchyard-manager' });
  const stranger = await other.issue('stranger-client', { cn: 'switchyard-manager' });
  const { agent, driver } = await tlsAgent(dir, 'agent', serverCert, ca.cert, ['127.0.1.100']);
  t.after(() => agent.close());
  assert.match(agent.url, /^https:/);

  const plain = await refusal(client(agent.url.replace('https:', 'http:')).listVips());
  t.diagnostic(`plain HTTP: ${plain}`);
  const noCert = await refusal(client(agent.url, { ca_file: ca.cert }).listVips());
  t.diagnostic(`no client certificate: ${noCert}`);
  const otherCa = await refusal(
    client(agent.url, {
      ca_file: ca.cert,
      cert_file: stranger.cert,
      key_file: stranger.key,
    }).addVip('127.0.1.100', 'eth0', 24),
  );
  t.diagnostic(`client certificate from another CA: ${otherCa}`);
  const unverified = await refusal(
    client(agent.url, { cert_file: manager.cert, key_file: manager.key }).listVips(),
  );
  assert.match(
    unverified,
    /certificate/i,
    "without agent_ca_file the manager does not trust the agent's test CA",
  );
  assert.deepEqual(driver.calls, [], 'no refused manager changed anything');

  const trusted = client(agent.url, {
    ca_file: ca.cert,
    cert_file: manager.cert,
    key_file: manager.key,
  });
  assert.equal((await trusted.addVip('127.0.1.100', 'eth0', 24)).changed, true);
  assert.deepEqual(driver.ips(), ['127.0.1.100']);

  // Rotation: new files in place of the old ones; the next connection gets the new certificate.
  const port = Number(new URL(agent.url).port);
  assert.equal(await presented(port, ca.cert, manager), fingerprint(serverCert.cert));
  const before = fingerprint(serverCert.cert);
  const rotated = await ca.issue('agent-server-2');
  copyFileSync(rotated.key, serverCert.key);
  copyFileSync(rotated.cert, serverCert.cert);
  const after = await presented(port, ca.cert, manager);
  assert.notEqual(after, before);
  assert.equal(
    after,
    fingerprint(rotated.cert),
    'the rotated certificate is served without a restart',
  );
  assert.equal(
    (await trusted.listVips()).held.length,
    1,
    'the manager still gets through after the rotation',
  );
});

test('HTTPS everywhere: the CLI moves the writer over mutual TLS, the manager moves VIPs through mTLS agents, /metrics stays plain on metrics_listen', async (t) => {
  if (!requireBinaries(t, MARIADB) || !requireBinaries(t, OPENSSL)) return;
  const sandbox = await startSandbox(t, { masters: 2, replicas: 1 });
  const dir = join(sandbox.dir, 'tls');
  const ca = await makeTestCa(dir, 'cluster');
  const other = await makeTestCa(dir, 'other');
  const managerServer = await ca.issue('manager-server');
  const managerClient = await ca.issue('manager-client');
  const operator = await ca.issue('operator');
  const ips = ['127.0.1.100', '127.0.1.101', '127.0.1.102', '127.0.1.103'];
  const agents: Record<string, { agent: RunningAgent; driver: RecordingVipDriver }> = {};
  for (const host of ['db1', 'db2', 'db3']) {
    agents[host] = await tlsAgent(dir, host, await ca.issue(`${host}-agent`), ca.cert, ips);
    t.after(() => agents[host]?.agent.close());
  }
  const metricsPort = sandbox.listenPort + 50;
  const config = writeTestConfig(sandbox, 'tls.yml', (raw) => {
    raw.monitor = FAST_MONITOR;
    raw.tls = {
      cert_file: managerServer.cert,
      key_file: managerServer.key,
      client_ca_file: ca.cert,
    };
    raw.metrics_listen = `127.0.0.1:${metricsPort}`;
    raw.actuator = {
      vip: { interface: 'eth0' },
      agent_token_file: join(dir, 'agent.token'),
      agent_ca_file: ca.cert,
      agent_cert_file: managerClient.cert,
      agent_key_file: managerClient.key,
    };
    for (const host of ['db1', 'db2', 'db3']) raw.hosts[host].agent = agents[host]?.agent.url;
  });
  const { daemon, url } = await startDaemon(t, config, 'tls-daemon.log');
  assert.match(url, /^https:/);
  await waitFor(
    'every host ONLINE with a reader VIP on its agent',
    async () =>
      ['db1', 'db2', 'db3'].every(
        (host) =>
          daemon.status().hosts.find((entry) => entry.name === host)?.state === 'ONLINE' &&
          (agents[host]?.driver.ips().length ?? 0) > 0,
      ),
    20_000,
  );

  // The writer's lease reaches the other agents over mutual TLS too (each agent's certificate is its client certificate).
  const writerLease = () => daemon.status().hosts.find((host) => host.name === 'db1')?.agent?.lease;
  await waitFor(
    "db1's lease to reach db2's and db3's agents",
    async () => ['db2', 'db3'].every((host) => writerLease()?.reached.includes(host)),
    10_000,
  ).catch((error) => {
    console.error(JSON.stringify(writerLease()));
    throw error;
  });
  assert.equal(writerLease()?.lapsed, false);

  const token = readFileSync(join(sandbox.dir, 'token'), 'utf8').trim();
  const cli = async (args: string[]) => {
    try {
      const { stdout, stderr } = await run(process.execPath, [CLI, ...args, '--url', url], {
        env: { ...process.env, SWITCHYARD_TOKEN: token },
        timeout: 60_000,
      });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const failure = error as { code: number; stdout: string; stderr: string };
      return { code: failure.code, stdout: failure.stdout, stderr: failure.stderr };
    }
  };
  const untrusted = await cli(['show', '--cert-file', operator.cert, '--key-file', operator.key]);
  assert.equal(untrusted.code, 1, 'without --ca-file the CLI does not trust the test CA');
  t.diagnostic(`CLI without --ca-file: ${untrusted.stderr.trim()}`);
  const noClientCert = await cli(['show', '--ca-file', ca.cert]);
  assert.equal(noClientCert.code, 1, 'the daemon requires a client certificate');
  const strangerCert = await other.issue('stranger');
  const stranger = await cli([
    'move-role',
    'writer',
    'db2',
    '--ca-file',
    ca.cert,
    '--cert-file',
    strangerCert.cert,
    '--key-file',
    strangerCert.key,
  ]);
  assert.equal(stranger.code, 1, 'a client certificate from another CA is refused');
  assert.equal(
    Object.values(daemon.status().roles.writer ?? {})[0],
    'db1',
    'the refused move changed nothing',
  );

  const moved = await cli([
    'move-role',
    'writer',
    'db2',
    '--ca-file',
    ca.cert,
    '--cert-file',
    operator.cert,
    '--key-file',
    operator.key,
  ]);
  assert.equal(moved.code, 0, moved.stderr);
  await waitFor(
    "db2's agent to hold the writer VIP",
    async () => agents.db2?.driver.ips().includes('127.0.1.100'),
    10_000,
  );
  assert.ok(!agents.db1?.driver.ips().includes('127.0.1.100'), "db1's agent dropped it");
  const shown = await cli([
    'show',
    '--json',
    '--ca-file',
    ca.cert,
    '--cert-file',
    operator.cert,
    '--key-file',
    operator.key,
  ]);
  assert.equal(shown.code, 0, shown.stderr);

  const scrape = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
  assert.equal(scrape.status, 200);
  assert.match(await scrape.text(), /switchyard_vip_held|switchyard_mode/);
  assert.equal(
    (
      await fetch(`http://127.0.0.1:${metricsPort}/api/v1/status`, {
        headers: { authorization: `Bearer ${token}` },
      })
    ).status,
    404,
    'the plain listener has no API',
  );
  await assert.rejects(
    fetch(`${url.replace('https:', 'http:')}/metrics`),
    'the main listener speaks only TLS',
  );
});

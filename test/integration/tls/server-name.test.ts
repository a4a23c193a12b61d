/**
 * A TLS gRPC channel to an IP address must not make Node warn DEP0123 ("Setting the TLS
 * ServerName to an IP address is not permitted"): every program dials IPs. Run in a child
 * process, because Node prints a deprecation once per process and jest's workers share theirs.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const build = path.resolve(__dirname, '../../../build/services/common');

const script = `
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const { createDevCa, issueDevCert } = require(${JSON.stringify(path.join(build, 'dev-pki.js'))});
const { TransportSecurity } = require(${JSON.stringify(path.join(build, 'tls.js'))});
const { startGrpcServer, GRPC_OPTIONS, waitForReady } = require(${JSON.stringify(path.join(build, 'grpc.js'))});
(async () => {
  const dir = process.argv[1];
  const ca = createDevCa(path.join(dir, 'ca'));
  const cert = (name, role) => issueDevCert(ca, path.join(dir, name), { commonName: name, uris: ['spiffe://dragonfly/' + role], ipAddresses: ['127.0.0.1'], days: 1 });
  const files = (c) => ({ insecure: false, caCert: ca.certFile, cert: c.certFile, key: c.keyFile, reloadInterval: '1h' });
  const serverSec = TransportSecurity.fromConfig(files(cert('server', 'manager')), undefined, 'test');
  const clientSec = TransportSecurity.fromConfig(files(cert('client', 'manager')), undefined, 'test');
  const server = await startGrpcServer('127.0.0.1:0', [], serverSec.serverCredentials());
  const client = new grpc.Client('127.0.0.1:' + server.port, clientSec.channelCredentials(['manager']), GRPC_OPTIONS);
  await waitForReady(client, 10000);
  client.close();
  await server.shutdown(0);
  serverSec.close();
  clientSec.close();
  console.log('connected');
})().catch((e) => { console.error(e); process.exit(1); });
`;

describe('TLS gRPC channels to IP addresses', () => {
  it('connect with mTLS and print no DEP0123 warning', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tls-server-name-'));
    try {
      const run = spawnSync(process.execPath, ['-e', script, dir], { encoding: 'utf8', timeout: 60_000, cwd: path.resolve(__dirname, '../../..') });
      expect(run.stdout).toContain('connected');
      expect(run.status).toBe(0);
      expect(run.stderr).not.toMatch(/DEP0123|ServerName to an IP/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

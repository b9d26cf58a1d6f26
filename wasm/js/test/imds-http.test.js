// fromInstanceMetadata with Node's real fetch against a mock IMDS on
// loopback HTTP. Every wait is bounded by the provider's own timeouts.

import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';

import { fromInstanceMetadata } from '../../pkg/node.js';
import { EXTENDED, HOUR, LEGACY, MINUTE, HttpImds, TOKEN_PATH } from './support.js';

let imds;

beforeEach(async () => {
  imds = await new HttpImds().start();
});

afterEach(async () => {
  await imds.stop();
});

test('a cold fetch is a token, the role and the credentials over HTTP', async () => {
  const identity = await fromInstanceMetadata({ endpoint: imds.endpoint })();
  assert.deepEqual(imds.paths(), [`PUT ${TOKEN_PATH}`, `GET ${EXTENDED}`, `GET ${EXTENDED}web`]);
  assert.equal(imds.requests[0].headers['x-aws-ec2-metadata-token-ttl-seconds'], '21600');
  assert.equal(imds.requests[2].headers['x-aws-ec2-metadata-token'], imds.token);
  assert.equal(identity.accessKeyId, 'ASIAHTTP1');
  assert.equal(identity.secretAccessKey, imds.current.SecretAccessKey);
  assert.equal(identity.sessionToken, imds.current.Token);
  assert.equal(identity.accountId, '210987654321');
  assert.equal(identity.expiration.toISOString(), imds.current.Expiration.replace('Z', '.000Z'));
});

test('200 concurrent callers cause one fetch sequence', async () => {
  const credentials = fromInstanceMetadata({ endpoint: imds.endpoint });
  const identities = await Promise.all(Array.from({ length: 200 }, () => credentials()));
  assert.equal(imds.requests.length, 3);
  assert.ok(identities.every((identity) => identity.accessKeyId === 'ASIAHTTP1'));
});

test('an outage across expiry keeps serving the last credentials', async () => {
  // The host clock runs ahead on demand: a jump past expiry, as after a
  // suspend, while IMDS is down.
  let skew = 0;
  const now = () => Date.now() + skew;
  const warnings = [];
  const credentials = fromInstanceMetadata({
    endpoint: imds.endpoint,
    now,
    maxAttempts: 1,
    logger: { warn: (line) => warnings.push(line) },
  });
  const first = await credentials();
  imds.mode = 'down';
  skew = 6 * HOUR + MINUTE;
  const during = await credentials();
  assert.equal(during.accessKeyId, first.accessKeyId);
  assert.equal(during.expiration.getTime(), first.expiration.getTime(), 'the original expiration');
  assert.ok(during.expiration.getTime() < now());
  // The six-hour token expired too: the refresh starts with a new one.
  assert.deepEqual(imds.paths().slice(3), [`PUT ${TOKEN_PATH}`], 'one refresh was tried');
  assert.ok(warnings.some((line) => /static stability/.test(line)));
});

test('a token request answered 404 falls back to IMDSv1', async () => {
  imds.mode = 'v1-only';
  const identity = await fromInstanceMetadata({ endpoint: imds.endpoint })();
  assert.equal(identity.accessKeyId, 'ASIAHTTP1');
  assert.deepEqual(imds.paths(), [`PUT ${TOKEN_PATH}`, `GET ${EXTENDED}`, `GET ${EXTENDED}web`]);
  assert.ok(imds.requests.slice(1).every((r) => r.headers['x-aws-ec2-metadata-token'] === undefined));
});

test('a hanging IMDS rejects within the timeout', async () => {
  imds.mode = 'hang';
  const timeout = 200;
  const started = performance.now();
  await assert.rejects(fromInstanceMetadata({ endpoint: imds.endpoint, timeout, ec2MetadataV1Disabled: true })(), {
    name: 'LikelyHopLimit',
  });
  const elapsed = performance.now() - started;
  // A liveness bound, not a speed target: one attempt, plus slack for a
  // loaded machine.
  assert.ok(elapsed < timeout + 2000, `rejected after ${elapsed} ms`);
  assert.deepEqual(imds.paths(), [`PUT ${TOKEN_PATH}`]);
});

test('a hanging IMDS with IMDSv1 allowed rejects after its bounded attempts', async () => {
  imds.mode = 'hang';
  await assert.rejects(fromInstanceMetadata({ endpoint: imds.endpoint, timeout: 100, maxAttempts: 2 })(), {
    name: 'Unreachable',
    message: /timed out/,
  });
  assert.deepEqual(imds.paths(), [`PUT ${TOKEN_PATH}`, `GET ${EXTENDED}`, `GET ${EXTENDED}`]);
});

test('a legacy-only IMDS is used through the legacy paths', async () => {
  const handle = imds.handle.bind(imds);
  imds.handle = (req, res) => {
    if (req.url.startsWith(EXTENDED)) {
      imds.requests.push({ method: req.method, path: req.url, headers: req.headers });
      res.writeHead(404).end();
      return;
    }
    handle(req, res);
  };
  const identity = await fromInstanceMetadata({ endpoint: imds.endpoint })();
  assert.equal(identity.accessKeyId, 'ASIAHTTP1');
  assert.deepEqual(imds.paths(), [`PUT ${TOKEN_PATH}`, `GET ${EXTENDED}`, `GET ${LEGACY}`, `GET ${LEGACY}web`]);
});

test('a scheduled refresh does not keep a Node process alive', async () => {
  const entry = new URL('../../pkg/node.js', import.meta.url).href;
  const script = `
    const { fromInstanceMetadata } = await import(${JSON.stringify(entry)});
    const identity = await fromInstanceMetadata({ endpoint: ${JSON.stringify(imds.endpoint)} })();
    console.log(identity.accessKeyId);
  `;
  const { stdout } = await new Promise((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { timeout: 20_000 }, (error, out, err) =>
      error ? reject(Object.assign(error, { stderr: err })) : resolve({ stdout: out }),
    );
  });
  // The child printed and exited by itself although its refresh timer is
  // hours away (execFile's timeout would have killed it otherwise).
  assert.equal(stdout.trim(), 'ASIAHTTP1');
});

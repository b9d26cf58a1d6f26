// fromInstanceMetadata on a simulated clock with a scripted IMDS behind the
// injected fetch: the FIELD-GUIDE §4 rules the JavaScript loop touches.

import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';

import { fromInstanceMetadata } from '../../pkg/node.js';
import {
  EXTENDED,
  FakeImds,
  HOUR,
  LEGACY,
  MINUTE,
  SimClock,
  TOKEN_PATH,
  connectionRefused,
  plain,
  settle,
} from './support.js';

let clock;
let imds;
let logs;

const logger = {
  warn: (line) => logs.push({ level: 'warn', line }),
  debug: (line) => logs.push({ level: 'debug', line }),
};

function provider(options = {}) {
  return fromInstanceMetadata({ fetch: imds.fetch, now: clock.now, seed: 7, logger, ...options });
}

/** The outcome of a promise, without leaving a rejection unhandled meanwhile. */
function outcome(promise) {
  return promise.then(
    (value) => ({ value }),
    (error) => ({ error }),
  );
}

beforeEach(() => {
  clock = new SimClock().install();
  imds = new FakeImds(clock);
  logs = [];
});

afterEach(() => {
  clock.uninstall();
});

test('a cold call fetches a token, the role and the credentials', async () => {
  const credentials = provider();
  const identity = await credentials();
  assert.deepEqual(imds.paths(), [`PUT ${TOKEN_PATH}`, `GET ${EXTENDED}`, `GET ${EXTENDED}web`]);
  assert.equal(imds.requests[0].headers['x-aws-ec2-metadata-token-ttl-seconds'], '21600');
  assert.equal(imds.requests[1].headers['x-aws-ec2-metadata-token'], imds.token);
  assert.deepEqual(plain(identity), {
    accessKeyId: 'ASIAFAKE1',
    secretAccessKey: 'secret-key-SECRET-1',
    sessionToken: 'session-token-SECRET-1',
    expiration: imds.current.Expiration.replace('Z', '.000Z'),
    accountId: '123456789012',
  });
  assert.ok(identity.expiration instanceof Date);
});

test('concurrent cold callers share one fetch sequence', async () => {
  const credentials = provider();
  const results = await Promise.all(Array.from({ length: 100 }, () => credentials()));
  assert.equal(imds.requests.length, 3);
  assert.ok(results.every((identity) => identity.accessKeyId === 'ASIAFAKE1'));
});

test('cached credentials resolve without fetching or awaiting a timer', async () => {
  const credentials = provider();
  await credentials();
  const requestsBefore = imds.requests.length;
  const timersBefore = clock.pending();
  await clock.advance(10 * MINUTE);

  let resolved = 0;
  for (let call = 0; call < 1000; call++) credentials().then(() => resolved++);
  // Only microtasks run here: no timer fires, no IO completes.
  for (let turn = 0; turn < 3; turn++) await Promise.resolve();
  assert.equal(resolved, 1000);
  assert.equal(imds.requests.length, requestsBefore);
  assert.deepEqual(clock.pending(), timersBefore);
});

test('the refresh timer never keeps a Node process alive', async () => {
  await provider()();
  const timers = clock.pending();
  assert.ok(timers.length > 0, 'a refresh is scheduled');
  assert.ok(timers.every((timer) => timer.unrefed));
});

test('refresh runs ahead of expiry in the background, off the caller path', async () => {
  const credentials = provider();
  await credentials();
  imds.rotate();
  const requestsBefore = imds.requests.length;
  // Six-hour credentials: the advisory window opens 48-60 minutes before
  // expiry; no caller asks in the meantime.
  await clock.advance(5 * HOUR + 15 * MINUTE);
  assert.deepEqual(imds.paths().slice(requestsBefore), [`GET ${EXTENDED}`, `GET ${EXTENDED}web`]);
  const identity = await credentials();
  assert.equal(identity.accessKeyId, 'ASIAFAKE2');
  assert.equal(imds.requests.length, requestsBefore + 2);
});

test('callers get the cached credentials at once while a refresh is in flight', async () => {
  // A long request timeout keeps the slow refresh in flight.
  const credentials = provider({ timeout: 30 * MINUTE });
  await credentials();
  let release;
  const held = new Promise((resolve) => {
    release = resolve;
  });
  imds.on('GET', `${EXTENDED}web`, () => held.then(() => new Response(JSON.stringify(imds.rotate()))));
  await clock.advance(5 * HOUR + 15 * MINUTE);
  assert.equal(imds.paths().at(-1), `GET ${EXTENDED}web`, 'the refresh is waiting for IMDS');

  const during = await credentials();
  assert.equal(during.accessKeyId, 'ASIAFAKE1');

  release();
  await settle();
  assert.equal((await credentials()).accessKeyId, 'ASIAFAKE2');
});

test('a process that slept past expiry fetches instead of serving expired credentials', async () => {
  const credentials = provider();
  await credentials();
  imds.rotate();
  // Suspended: the wall clock jumps days ahead without any timer firing.
  clock.time += 3 * 24 * HOUR;
  imds.rotate();
  const identity = await credentials();
  assert.equal(identity.accessKeyId, 'ASIAFAKE3');
  assert.ok(identity.expiration.getTime() > clock.now());
});

test('an outage across expiry keeps serving the last credentials (static stability)', async () => {
  const credentials = provider();
  const first = await credentials();
  imds.all(() => new Response('busy', { status: 503 }));
  await clock.advance(6 * HOUR + MINUTE);

  const pending = outcome(credentials());
  await clock.advance(10_000);
  const { value, error } = await pending;
  assert.equal(error, undefined);
  assert.deepEqual(plain(value), plain(first), 'the original credentials and expiration');
  assert.ok(value.expiration.getTime() < clock.now());
  assert.ok(logs.some(({ level, line }) => level === 'warn' && /static stability/.test(line)), 'a warning is logged');

  imds.restore();
  imds.rotate();
  await clock.advance(15 * MINUTE);
  assert.equal((await credentials()).accessKeyId, 'ASIAFAKE2', 'recovers once IMDS is back');
});

test('strict mode rejects once the credentials expire during an outage', async () => {
  const credentials = provider({ strict: true });
  await credentials();
  imds.all(() => new Response('busy', { status: 503 }));
  await clock.advance(6 * HOUR + MINUTE);

  const pending = outcome(credentials());
  await clock.advance(10_000);
  const { error } = await pending;
  assert.ok(error instanceof Error);
  assert.equal(error.name, 'CredentialsExpired');
  assert.match(error.message, /expired at 2026-11-29T06:00:00Z/);
});

test('a token endpoint without IMDSv2 falls back to IMDSv1', async () => {
  imds.on('PUT', TOKEN_PATH, () => new Response('', { status: 404 }));
  const identity = await provider()();
  assert.equal(identity.accessKeyId, 'ASIAFAKE1');
  assert.deepEqual(imds.paths(), [`PUT ${TOKEN_PATH}`, `GET ${EXTENDED}`, `GET ${EXTENDED}web`]);
  assert.ok(imds.requests.slice(1).every((r) => r.headers['x-aws-ec2-metadata-token'] === undefined));
  assert.ok(logs.some(({ level, line }) => level === 'warn' && /IMDSv1/.test(line)));
});

test('with IMDSv1 disabled a refused token request rejects with V1Disabled', async () => {
  imds.on('PUT', TOKEN_PATH, () => new Response('', { status: 403 }));
  const { error } = await outcome(provider({ ec2MetadataV1Disabled: true })());
  assert.equal(error.name, 'V1Disabled');
  assert.match(error.message, /IMDSv1 is disabled \(by configuration\)/);
  assert.deepEqual(imds.paths(), [`PUT ${TOKEN_PATH}`]);
});

test('a hanging token request rejects with LikelyHopLimit after the timeout', async () => {
  imds.on('PUT', TOKEN_PATH, () => 'hang');
  const pending = outcome(provider({ ec2MetadataV1Disabled: true, timeout: 250 })());
  await clock.advance(249);
  assert.equal(await Promise.race([pending, settle().then(() => 'still waiting')]), 'still waiting');
  await clock.advance(1);
  const { error } = await pending;
  assert.equal(error.name, 'LikelyHopLimit');
  assert.match(error.message, /hop limit/);
});

test('a hanging IMDS rejects with Unreachable after the attempts, each bounded by the timeout', async () => {
  imds.all(() => 'hang');
  const pending = outcome(provider({ timeout: 1000, maxAttempts: 3 })());
  await clock.advance(10_000);
  const { error } = await pending;
  assert.equal(error.name, 'Unreachable');
  assert.match(error.message, /timed out/);
  // The token PUT times out once and falls back to IMDSv1 (§4.5); the role
  // list is then tried three times.
  assert.deepEqual(imds.paths(), [`PUT ${TOKEN_PATH}`, `GET ${EXTENDED}`, `GET ${EXTENDED}`, `GET ${EXTENDED}`]);
});

test('an unreachable endpoint rejects with the connection failure', async () => {
  imds.all(() => {
    throw connectionRefused();
  });
  const pending = outcome(provider({ maxAttempts: 1 })());
  await clock.advance(1000);
  const { error } = await pending;
  assert.equal(error.name, 'Unreachable');
  assert.match(error.message, /connection refused/);
});

test('an instance without a role rejects with NoRoleAttached', async () => {
  imds.on('GET', EXTENDED, () => new Response('', { status: 404 }));
  imds.on('GET', LEGACY, () => new Response('', { status: 404 }));
  const { error } = await outcome(provider()());
  assert.equal(error.name, 'NoRoleAttached');
  assert.equal(error.message, 'no IAM role is attached to this instance');
});

test('options reach the requests: endpoint mode, role name and timeout', async () => {
  const credentials = provider({ endpointMode: 'IPv6', profile: 'admin', timeout: 300 });
  imds.role = 'admin';
  await credentials();
  assert.ok(imds.requests.every((r) => r.url.startsWith('http://[fd00:ec2::254]/')));
  assert.deepEqual(imds.paths(), [`PUT ${TOKEN_PATH}`, `GET ${EXTENDED}admin`]);

  const explicit = provider({ endpoint: 'http://127.0.0.1:1338', endpointMode: 'IPv6' });
  await explicit();
  assert.ok(imds.requests.at(-1).url.startsWith('http://127.0.0.1:1338/'));
});

test('invalid options throw a ConfigError at once', () => {
  for (const options of [
    { endpointMode: 'IPv5' },
    { timeout: -1 },
    { timeout: 'soon' },
    { maxAttempts: 0 },
    { endpoint: 'ftp://169.254.169.254' },
    { profile: '../admin' },
  ]) {
    assert.throws(() => fromInstanceMetadata(options), { name: 'ConfigError' }, JSON.stringify(options));
  }
});

test('secrets never reach log lines or error messages', async () => {
  // A stale token (401, then a new token), a malformed body and an error
  // body, all logged at debug level.
  let stale = true;
  imds.on('GET', `${EXTENDED}web`, () => {
    if (stale) {
      stale = false;
      return new Response('', { status: 401 });
    }
    return new Response(JSON.stringify(imds.current));
  });
  const credentials = provider();
  await credentials();
  assert.deepEqual(imds.paths(), [
    `PUT ${TOKEN_PATH}`,
    `GET ${EXTENDED}`,
    `GET ${EXTENDED}web`,
    `PUT ${TOKEN_PATH}`,
    `GET ${EXTENDED}web`,
  ]);

  imds.on('GET', `${EXTENDED}web`, () => new Response('{"AccessKeyId":"ASIA","SecretAccessKey":"body-SECRET'));
  clock.time += 7 * HOUR;
  const broken = outcome(credentials());
  await clock.advance(10_000);
  imds.on('GET', `${EXTENDED}web`, () => new Response(JSON.stringify({ Code: 'Failed', Message: 'try later' })));
  clock.time += 2 * HOUR;
  const failed = outcome(credentials());
  await clock.advance(10_000);

  const errors = [(await broken).error, (await failed).error];
  assert.ok(errors.every((error) => error instanceof Error), 'both fetches fail');
  assert.match(errors[1].message, /Code "Failed": try later/);
  assert.ok(logs.length > 10);
  for (const text of [...logs.map(({ line }) => line), ...errors.map((e) => e.message)]) {
    assert.doesNotMatch(text, /SECRET/);
  }
});

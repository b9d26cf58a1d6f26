// The low-level CredentialsMachine: the core's run loop as plain JavaScript
// objects, for hosts that do their own IO.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { CredentialsMachine } from '../../pkg/node.js';
import { EXTENDED, START, TOKEN_PATH } from './support.js';

const BODY = JSON.stringify({
  Code: 'Success',
  AccessKeyId: 'ASIALOW',
  SecretAccessKey: 'low-secret-SECRET',
  Token: 'low-token-SECRET',
  Expiration: '2026-11-29T06:00:00Z',
});

/** Drain poll(), answering each request from `answer`; returns what was seen. */
function drive(machine, now, answer) {
  const seen = { requests: [], events: [], last: undefined };
  for (let step = 0; step < 50; step++) {
    const output = machine.poll(now);
    if (output.type === 'send') {
      seen.requests.push(output.request);
      machine.handleResponse(output.request.id, answer(output.request), now);
    } else if (output.type === 'event') {
      seen.events.push(output.event);
    } else {
      seen.last = output;
      return seen;
    }
  }
  throw new Error('poll() did not settle in 50 steps');
}

function imdsAnswer(request) {
  const path = new URL(request.url).pathname;
  if (path === TOKEN_PATH) return { status: 200, body: 'low-imds-token-SECRET' };
  if (path === EXTENDED) return { status: 200, body: new TextEncoder().encode('web') };
  return { status: 200, headers: [['content-type', 'application/json']], body: BODY };
}

test('the run loop: demand, poll, report, demand again', () => {
  const machine = new CredentialsMachine({ request_timeout: '250ms' }, 1);
  assert.deepEqual(machine.demand(START), { type: 'pending' });
  assert.equal(machine.isFetching, true);
  const seen = drive(machine, START, imdsAnswer);

  const { id, ...request } = seen.requests[0];
  assert.ok(Number.isSafeInteger(id), 'request ids are exact JavaScript numbers');
  assert.deepEqual(request, {
    method: 'PUT',
    url: `http://169.254.169.254${TOKEN_PATH}`,
    headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '21600' },
    timeoutMs: 250,
    maxBodyBytes: 65536,
  });
  assert.equal(seen.requests[1].headers['x-aws-ec2-metadata-token'], 'low-imds-token-SECRET');
  assert.equal(seen.last.type, 'wakeAt');
  assert.equal(seen.last.at, machine.nextDeadline);
  assert.ok(seen.events.some((event) => event.name === 'credentials_received'));
  assert.ok(seen.events.every((event) => typeof event.message === 'string' && typeof event.warning === 'boolean'));

  const ready = machine.demand(START);
  assert.equal(ready.type, 'ready');
  assert.deepEqual(ready.credentials, {
    accessKeyId: 'ASIALOW',
    secretAccessKey: 'low-secret-SECRET',
    sessionToken: 'low-token-SECRET',
    expiration: Date.parse('2026-11-29T06:00:00Z'),
  });
  const snapshot = machine.snapshot();
  assert.deepEqual(snapshot.credentials, ready.credentials);
  assert.equal(snapshot.serveUntil, Date.parse('2026-11-29T05:59:00Z'), 'the mandatory window starts a minute before expiry');
  assert.deepEqual(machine.peek(START), ready);
  assert.equal(machine.isFetching, false);
});

test('a rejection is an Error named after its cause, and events name it too', () => {
  const machine = new CredentialsMachine({ v1_disabled: true }, 1);
  assert.equal(machine.demand(START).type, 'pending');
  const seen = drive(machine, START, () => ({ status: 403 }));
  const failed = seen.events.find((event) => event.name === 'fetch_failed');
  assert.equal(failed.cause, 'V1Disabled');
  assert.equal(failed.warning, true);

  const answer = machine.demand(START);
  assert.equal(answer.type, 'rejected');
  assert.ok(answer.error instanceof Error);
  assert.equal(answer.error.name, 'V1Disabled');
  assert.match(answer.error.message, /^IMDSv1 is disabled \(by configuration\)/);
});

test('transport failures and timeouts are inputs like responses', () => {
  const machine = new CredentialsMachine({ attempts: 1 }, 1);
  assert.equal(machine.demand(START).type, 'pending');
  let output = machine.poll(START);
  while (output.type === 'event') output = machine.poll(START);
  machine.handleFailure(output.request.id, 'TimedOut', START);
  // The token request timed out: IMDSv1 is tried next, and left hanging
  // until the machine's own deadline.
  output = machine.poll(START);
  while (output.type === 'event') output = machine.poll(START);
  assert.equal(output.type, 'send');
  assert.equal(output.request.headers['x-aws-ec2-metadata-token'], undefined);
  const deadline = machine.nextDeadline;
  assert.equal(deadline, START + 1000);
  machine.handleTimeout(deadline);
  const answer = machine.demand(deadline);
  assert.equal(answer.type, 'rejected');
  assert.equal(answer.error.name, 'Unreachable');
  // A late report for the abandoned request is ignored.
  machine.handleResponse(output.request.id, { status: 200, body: 'web' }, deadline + 5);
});

test('configuration is a JSON object or text of core Config fields', () => {
  const fromText = new CredentialsMachine('{"role_name":"web","stability":"strict"}', 1);
  fromText.demand(START);
  const request = drive(fromText, START, imdsAnswer).requests[1];
  assert.equal(new URL(request.url).pathname, `${EXTENDED}web`);

  assert.throws(() => new CredentialsMachine({ request_timeot: '1s' }), {
    name: 'ConfigError',
    message: /unknown configuration field `request_timeot`/,
  });
  assert.throws(() => new CredentialsMachine({ token_ttl: '7h' }), { name: 'ConfigError', message: /`token_ttl`/ });
  assert.throws(() => new CredentialsMachine({ attempts: 'three' }), { name: 'ConfigError', message: /`attempts`/ });
  assert.throws(() => new CredentialsMachine('{not json'), { name: 'ConfigError' });
  assert.throws(() => new CredentialsMachine([1, 2]), TypeError);
});

test('misuse gets a clear typed error and costs nothing', () => {
  const machine = new CredentialsMachine(undefined, 1);
  machine.demand(START);
  drive(machine, START, imdsAnswer);
  assert.throws(() => machine.handleResponse(99, { status: 200 }, START), { name: 'MisuseError', message: /#99/ });
  assert.throws(() => machine.handleResponse(-1, { status: 200 }, START), TypeError);
  assert.throws(() => machine.handleFailure(0, 'Exploded', START), TypeError);
  assert.throws(() => machine.demand(Number.NaN), TypeError);
  assert.throws(() => machine.handleResponse(0, { status: 'ok' }, START), TypeError);
  assert.throws(() => machine.handleResponse(0, { status: 200, body: 42 }, START), TypeError);
  assert.throws(() => machine.handleResponse(0, { status: 200, headers: 'x' }, START), TypeError);
  assert.equal(machine.demand(START).type, 'ready', 'the credentials held are still served');
});

test('events never carry secrets', () => {
  const machine = new CredentialsMachine(undefined, 1);
  machine.demand(START);
  const seen = drive(machine, START, imdsAnswer);
  for (const event of seen.events) assert.doesNotMatch(JSON.stringify(event), /SECRET/);
});

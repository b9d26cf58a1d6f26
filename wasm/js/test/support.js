// Test doubles shared by the Node tests: a simulated clock with timers, a
// scripted fake IMDS for the injected `fetch`, and a real IMDS mock on
// loopback HTTP.

import http from 'node:http';
import { once } from 'node:events';

// 2026-11-29T00:00:00Z, the start of every simulated run.
export const START = Date.UTC(2026, 10, 29);

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;

/** Let every pending promise chain run (fake fetches, body streams). */
export async function settle() {
  for (let turn = 0; turn < 4; turn++) await new Promise((resolve) => setImmediate(resolve));
}

/**
 * Simulated wall clock whose timers fire in order, each at its own instant,
 * with promise chains settled in between. Replaces the global
 * setTimeout/clearTimeout until `uninstall()`.
 */
export class SimClock {
  constructor(start = START) {
    this.time = start;
    this.timers = new Set();
    this.sequence = 0;
    this.now = () => this.time;
    this.saved = undefined;
  }

  install() {
    this.saved = { setTimeout: globalThis.setTimeout, clearTimeout: globalThis.clearTimeout };
    globalThis.setTimeout = (callback, delay = 0, ...args) => {
      const timer = {
        at: this.time + Math.max(0, Number(delay) || 0),
        order: this.sequence++,
        run: () => callback(...args),
        unrefed: false,
        unref() {
          this.unrefed = true;
          return this;
        },
        ref() {
          this.unrefed = false;
          return this;
        },
      };
      this.timers.add(timer);
      return timer;
    };
    globalThis.clearTimeout = (timer) => {
      this.timers.delete(timer);
    };
    return this;
  }

  uninstall() {
    if (this.saved) Object.assign(globalThis, this.saved);
    this.saved = undefined;
  }

  /** Timers still pending, for assertions. */
  pending() {
    return [...this.timers];
  }

  /** Move time forward by `ms`, firing every timer due on the way. */
  async advance(ms) {
    const target = this.time + ms;
    for (let fired = 0; ; fired++) {
      await settle();
      let next;
      for (const timer of this.timers) {
        if (timer.at > target) continue;
        if (!next || timer.at < next.at || (timer.at === next.at && timer.order < next.order)) next = timer;
      }
      if (!next) break;
      if (fired > 100_000) throw new Error('timers keep firing: a loop that never settles');
      this.timers.delete(next);
      this.time = Math.max(this.time, next.at);
      next.run();
    }
    this.time = target;
    await settle();
  }
}

export const TOKEN_PATH = '/latest/api/token';
export const EXTENDED = '/latest/meta-data/iam/security-credentials-extended/';
export const LEGACY = '/latest/meta-data/iam/security-credentials/';

/** A fetch failure as Node's fetch reports an unreachable host. */
export function connectionRefused() {
  return new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) });
}

/**
 * A scripted IMDS behind an injected `fetch`. Routes answer like IMDS by
 * default; `on(method, path, answer)` overrides one, where `answer` returns a
 * `Response`, `'hang'` (never answer until aborted) or throws.
 */
export class FakeImds {
  constructor(clock, { role = 'web', lifetime = 6 * HOUR } = {}) {
    this.clock = clock;
    this.role = role;
    this.lifetime = lifetime;
    this.requests = [];
    this.overrides = new Map();
    this.issued = 0;
    this.token = 'imds-token-SECRET-0';
    this.current = undefined;
    this.rotate();
    this.fetch = (url, init = {}) => this.answer(new URL(url), init);
  }

  /** New credentials from now on, expiring `lifetime` after the clock. */
  rotate(lifetime = this.lifetime) {
    this.issued += 1;
    this.current = {
      Code: 'Success',
      LastUpdated: new Date(this.clock.now()).toISOString(),
      Type: 'AWS-HMAC',
      AccessKeyId: `ASIAFAKE${this.issued}`,
      SecretAccessKey: `secret-key-SECRET-${this.issued}`,
      Token: `session-token-SECRET-${this.issued}`,
      Expiration: new Date(this.clock.now() + lifetime).toISOString().replace(/\.\d+Z$/, 'Z'),
      AccountId: '123456789012',
    };
    return this.current;
  }

  on(method, path, answer) {
    this.overrides.set(`${method} ${path}`, answer);
    return this;
  }

  /** Every route answers like this (e.g. an outage). */
  all(answer) {
    this.everything = answer;
    return this;
  }

  restore() {
    this.everything = undefined;
    this.overrides.clear();
  }

  paths() {
    return this.requests.map((r) => `${r.method} ${r.path}`);
  }

  async answer(url, init) {
    const headers = Object.fromEntries(Object.entries(init.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
    const request = { method: init.method ?? 'GET', path: url.pathname, headers, url: url.href };
    this.requests.push(request);
    const key = `${request.method} ${request.path}`;
    const answer = this.everything ?? this.overrides.get(key) ?? ((req) => this.imds(req));
    const outcome = await answer(request);
    if (outcome === 'hang') {
      return new Promise((_, reject) => {
        const abort = () => reject(new DOMException('This operation was aborted', 'AbortError'));
        if (init.signal?.aborted) abort();
        init.signal?.addEventListener('abort', abort, { once: true });
      });
    }
    return outcome;
  }

  imds(request) {
    if (request.method === 'PUT' && request.path === TOKEN_PATH) {
      const ttl = request.headers['x-aws-ec2-metadata-token-ttl-seconds'];
      return new Response(this.token, { status: 200, headers: { 'x-aws-ec2-metadata-token-ttl-seconds': ttl } });
    }
    if (request.method !== 'GET') return new Response('', { status: 405 });
    if (request.path === EXTENDED || request.path === LEGACY) return new Response(`${this.role}\n`);
    if (request.path === EXTENDED + this.role || request.path === LEGACY + this.role) {
      return new Response(JSON.stringify(this.current));
    }
    return new Response('', { status: 404 });
  }
}

/** Keep only the parts of an identity a test compares. */
export function plain(identity) {
  return { ...identity, expiration: identity.expiration.toISOString() };
}

/**
 * A mock IMDS over real HTTP on 127.0.0.1 (port 0). `mode` switches its
 * behaviour: 'up', 'down' (500 to everything), 'hang' (never answers),
 * 'v1-only' (token PUT 404).
 */
export class HttpImds {
  constructor({ role = 'web', lifetime = 6 * HOUR, now = Date.now } = {}) {
    this.role = role;
    this.lifetime = lifetime;
    this.now = now;
    this.mode = 'up';
    this.token = 'http-imds-token-SECRET';
    this.requests = [];
    this.issued = 0;
    this.hanging = new Set();
    this.rotate();
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.server.keepAliveTimeout = 1000;
  }

  async start() {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.endpoint = `http://127.0.0.1:${this.server.address().port}`;
    return this;
  }

  async stop() {
    for (const res of this.hanging) res.destroy();
    this.server.closeAllConnections?.();
    this.server.close();
    await once(this.server, 'close');
  }

  rotate() {
    this.issued += 1;
    this.current = {
      Code: 'Success',
      Type: 'AWS-HMAC',
      AccessKeyId: `ASIAHTTP${this.issued}`,
      SecretAccessKey: `http-secret-SECRET-${this.issued}`,
      Token: `http-session-SECRET-${this.issued}`,
      Expiration: new Date(this.now() + this.lifetime).toISOString().replace(/\.\d+Z$/, 'Z'),
      AccountId: '210987654321',
    };
  }

  paths() {
    return this.requests.map((r) => `${r.method} ${r.path}`);
  }

  handle(req, res) {
    this.requests.push({ method: req.method, path: req.url, headers: req.headers });
    req.resume();
    const send = (status, body = '', headers = {}) => {
      res.writeHead(status, { 'content-type': 'text/plain', ...headers });
      res.end(body);
    };
    if (this.mode === 'hang') {
      this.hanging.add(res);
      res.on('close', () => this.hanging.delete(res));
      return;
    }
    if (this.mode === 'down') return send(500, 'internal error');
    if (req.method === 'PUT' && req.url === TOKEN_PATH) {
      if (this.mode === 'v1-only') return send(404, 'not found');
      const ttl = req.headers['x-aws-ec2-metadata-token-ttl-seconds'];
      return send(200, this.token, { 'x-aws-ec2-metadata-token-ttl-seconds': ttl });
    }
    const token = req.headers['x-aws-ec2-metadata-token'];
    if (token !== undefined && token !== this.token) return send(401, '');
    if (req.url === EXTENDED || req.url === LEGACY) return send(200, this.role);
    if (req.url === EXTENDED + this.role || req.url === LEGACY + this.role) {
      return send(200, JSON.stringify(this.current), { 'content-type': 'application/json' });
    }
    return send(404, 'not found');
  }
}

// The high-level provider: a thin loop that runs the credstate machine with
// the host's fetch, clock and timers. Every credential decision (when to
// fetch, what to serve, when to give up) is the machine's; this file only
// moves requests, responses and deadlines between the machine and the host.

const DEFAULT_IPV4_ENDPOINT = 'http://169.254.169.254';
const DEFAULT_IPV6_ENDPOINT = 'http://[fd00:ec2::254]';

// setTimeout fires after at most 2^31 - 1 ms; waking early is harmless.
const LONGEST_TIMER_MS = 2 ** 31 - 1;

function configError(message) {
  const error = new Error(message);
  error.name = 'ConfigError';
  return error;
}

/**
 * Map the friendly options of `fromInstanceMetadata` to the core's `Config`
 * fields. The one place where option names meet configuration names.
 */
export function machineConfig(options) {
  const config = {};
  if (options.endpoint !== undefined) {
    config.endpoint = String(options.endpoint);
  } else if (options.endpointMode !== undefined) {
    const mode = String(options.endpointMode).toLowerCase();
    if (mode !== 'ipv4' && mode !== 'ipv6') {
      throw configError(`endpointMode must be "IPv4" or "IPv6", not ${JSON.stringify(options.endpointMode)}`);
    }
    config.endpoint = mode === 'ipv6' ? DEFAULT_IPV6_ENDPOINT : DEFAULT_IPV4_ENDPOINT;
  }
  if (options.timeout !== undefined) {
    const timeout = options.timeout;
    if (typeof timeout !== 'number' || !Number.isFinite(timeout) || timeout < 1) {
      throw configError(`timeout must be a number of milliseconds of at least 1, not ${JSON.stringify(timeout)}`);
    }
    config.request_timeout = `${Math.round(timeout)}ms`;
  }
  if (options.maxAttempts !== undefined) config.attempts = options.maxAttempts;
  if (options.ec2MetadataV1Disabled !== undefined) config.v1_disabled = options.ec2MetadataV1Disabled;
  if (options.profile !== undefined) config.role_name = options.profile;
  if (options.strict !== undefined) config.stability = options.strict ? 'strict' : 'static';
  return config;
}

function randomSeed() {
  // Jitter only needs to differ between processes, not to be unpredictable.
  return Math.floor(Math.random() * 2 ** 53);
}

function failureKind(error) {
  const code = error?.cause?.code ?? error?.code;
  switch (code) {
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_SOCKET':
    case 'UND_ERR_CLOSED':
      return 'Reset';
    default:
      // No response at all: the connection could not be made.
      return 'ConnectRefused';
  }
}

function defaultFetch() {
  if (typeof globalThis.fetch !== 'function') {
    throw configError('this runtime has no global fetch: pass one as the `fetch` option');
  }
  return globalThis.fetch.bind(globalThis);
}

async function readBody(response, limit) {
  if (typeof response.body?.getReader !== 'function') return new Uint8Array(await response.arrayBuffer());
  const reader = response.body.getReader();
  const chunks = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.length;
    if (size > limit) {
      // The machine rejects bodies over its limit: stop reading.
      reader.cancel().catch(() => {});
      break;
    }
  }
  const body = new Uint8Array(Math.min(size, limit + 1));
  let offset = 0;
  for (const chunk of chunks) {
    const part = chunk.subarray(0, body.length - offset);
    body.set(part, offset);
    offset += part.length;
    if (offset === body.length) break;
  }
  return body;
}

function toIdentity(credentials) {
  const identity = {
    accessKeyId: credentials.accessKeyId,
    secretAccessKey: credentials.secretAccessKey,
    sessionToken: credentials.sessionToken,
    expiration: new Date(credentials.expiration),
  };
  if (credentials.accountId !== undefined) identity.accountId = credentials.accountId;
  return identity;
}

/** Drivers with callers waiting on them. */
const waiting = new Set();

/**
 * A timer callback that holds its driver weakly: a provider nobody
 * references any more is collected with its machine instead of refreshing
 * forever. (A function of its own, so that no closure context of the
 * driver's methods keeps a strong reference.)
 */
function wakeIfAlive(driver) {
  const weak = new WeakRef(driver);
  return () => weak.deref()?.wake();
}

/** Runs one machine: performs its requests, keeps its timer, wakes callers. */
class Driver {
  constructor(machine, options) {
    this.machine = machine;
    this.fetch = options.fetch ?? defaultFetch();
    this.now = options.now ?? Date.now;
    this.logger = options.logger;
    this.timer = undefined;
    this.timerAt = undefined;
    this.waiters = [];
    // The hot path: the machine's snapshot, as a settled promise of the
    // identity, handed out unchanged until `serveUntil`.
    this.serveUntil = -Infinity;
    this.cached = undefined;
  }

  wake() {
    this.timer = undefined;
    this.timerAt = undefined;
    this.input(() => this.machine.handleTimeout(this.now()));
  }

  provide() {
    try {
      if (this.now() < this.serveUntil) return this.cached;
    } catch (error) {
      return Promise.reject(error);
    }
    return this.demand();
  }

  async demand() {
    for (;;) {
      const answer = this.machine.demand(this.now());
      this.pump();
      if (answer.type === 'ready') return toIdentity(answer.credentials);
      if (answer.type === 'rejected') throw answer.error;
      // Held strongly while callers wait, even if they dropped the provider
      // (e.g. `await fromInstanceMetadata()()`) during a pause between
      // attempts, when only the weakly held timer is pending.
      waiting.add(this);
      await new Promise((resolve) => this.waiters.push(resolve));
    }
  }

  /** Feed one input to the machine, then act on what it wants next. */
  input(feed) {
    try {
      feed();
      this.pump();
      const snapshot = this.machine.snapshot();
      if (snapshot !== undefined) {
        this.serveUntil = snapshot.serveUntil;
        this.cached = Promise.resolve(toIdentity(snapshot.credentials));
      }
    } catch (error) {
      // Only a broken host gets here (e.g. a `now` that is not a number);
      // waiting callers meet the same error when they ask again.
      this.logger?.warn?.(`credstate: ${error.message}`);
    }
    const waiters = this.waiters;
    this.waiters = [];
    waiting.delete(this);
    for (const wake of waiters) wake();
  }

  pump() {
    for (;;) {
      const output = this.machine.poll(this.now());
      switch (output.type) {
        case 'send':
          this.send(output.request);
          break;
        case 'event':
          this.log(output.event);
          break;
        case 'wakeAt':
          this.arm(output.at);
          return;
        default:
          this.disarm();
          return;
      }
    }
  }

  log(event) {
    const logger = this.logger;
    if (!logger) return;
    const line = `credstate: ${event.message}`;
    if (event.warning) logger.warn?.(line);
    else logger.debug?.(line);
  }

  arm(at) {
    if (this.timer !== undefined && this.timerAt === at) return;
    this.disarm();
    const delay = Math.min(Math.max(0, at - this.now()), LONGEST_TIMER_MS);
    this.timerAt = at;
    this.timer = setTimeout(wakeIfAlive(this), delay);
    // A background refresh must never keep a Node process alive.
    this.timer?.unref?.();
  }

  disarm() {
    if (this.timer === undefined) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = undefined;
  }

  async send(request) {
    const abort = new AbortController();
    let timedOut = false;
    const deadline = setTimeout(() => {
      timedOut = true;
      abort.abort();
    }, request.timeoutMs);
    deadline?.unref?.();
    let outcome;
    try {
      const response = await this.fetch(request.url, {
        method: request.method,
        headers: request.headers,
        signal: abort.signal,
        redirect: 'manual',
      });
      let body;
      try {
        body = await readBody(response, request.maxBodyBytes);
      } catch {
        outcome = { failure: timedOut ? 'TimedOut' : 'Reset' };
      }
      outcome ??= { response: { status: response.status, headers: response.headers, body } };
    } catch (error) {
      outcome = { failure: timedOut ? 'TimedOut' : failureKind(error) };
    } finally {
      clearTimeout(deadline);
    }
    this.input(() => {
      if (outcome.response) this.machine.handleResponse(request.id, outcome.response, this.now());
      else this.machine.handleFailure(request.id, outcome.failure, this.now());
    });
  }
}

/**
 * Build `fromInstanceMetadata` over the wasm machine class. `ready()` returns
 * the class when the wasm module is already instantiated; otherwise the
 * first call of a provider awaits `load()`, so that a host may still call
 * `initialize()` with its own module after creating providers.
 */
export function providerFactory({ ready, load }) {
  return function fromInstanceMetadata(options = {}) {
    const config = machineConfig(options);
    const seed = options.seed ?? randomSeed();
    const start = (Machine) => new Driver(new Machine(config, seed), options);
    const Machine = ready();
    if (Machine !== undefined) {
      const driver = start(Machine);
      return (_identityProperties) => driver.provide();
    }
    let driver;
    let starting;
    return async (_identityProperties) => {
      if (driver === undefined) {
        starting ??= load()
          .then(start)
          .catch((error) => {
            starting = undefined;
            throw error;
          });
        driver = await starting;
      }
      return driver.provide();
    };
  };
}

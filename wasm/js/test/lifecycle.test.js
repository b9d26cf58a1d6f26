// What a provider leaves behind: nothing that runs once it is dropped.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';

const entry = new URL('../../pkg/node.js', import.meta.url).href;
const support = new URL('./support.js', import.meta.url).href;

/** Run `body` in a Node with `--expose-gc`; it prints how many requests IMDS saw after the warm-up. */
function backgroundRequests(keepProvider) {
  const script = `
    const { fromInstanceMetadata } = await import(${JSON.stringify(entry)});
    const { FakeImds, SimClock, HOUR, settle } = await import(${JSON.stringify(support)});
    const clock = new SimClock().install();
    const imds = new FakeImds(clock);
    let provider = fromInstanceMetadata({ fetch: imds.fetch, now: clock.now, seed: 3 });
    await provider();
    const warm = imds.requests.length;
    if (!${keepProvider}) provider = undefined;
    for (let round = 0; round < 5; round++) {
      globalThis.gc();
      await settle();
    }
    await clock.advance(12 * HOUR);
    console.log(imds.requests.length - warm, typeof provider);
  `;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { timeout: 20_000 }, (error, stdout, stderr) =>
      error ? reject(Object.assign(error, { stderr })) : resolve(stdout.trim()),
    );
  });
}

test('a provider in use keeps refreshing in the background', async () => {
  const [requests] = (await backgroundRequests(true)).split(' ');
  assert.ok(Number(requests) >= 2, `${requests} background requests`);
});

test('a dropped provider is collected instead of refreshing forever', async () => {
  assert.equal(await backgroundRequests(false), '0 undefined');
});

test('a one-shot call resolves even when the provider is dropped during a retry pause', async () => {
  const script = `
    const { fromInstanceMetadata } = await import(${JSON.stringify(entry)});
    const { FakeImds, SimClock, EXTENDED, settle } = await import(${JSON.stringify(support)});
    const clock = new SimClock().install();
    const imds = new FakeImds(clock);
    let failures = 1;
    imds.on('GET', EXTENDED + 'web', () =>
      failures-- > 0 ? new Response('', { status: 500 }) : new Response(JSON.stringify(imds.current)),
    );
    const pending = fromInstanceMetadata({ fetch: imds.fetch, now: clock.now, seed: 3 })();
    await settle();
    for (let round = 0; round < 5; round++) {
      globalThis.gc();
      await settle();
    }
    await clock.advance(2000);
    console.log((await pending).accessKeyId);
  `;
  const out = await new Promise((resolve, reject) => {
    execFile(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { timeout: 20_000 }, (error, stdout, stderr) =>
      error ? reject(Object.assign(error, { stderr })) : resolve(stdout.trim()),
    );
  });
  assert.equal(out, 'ASIAFAKE1');
});

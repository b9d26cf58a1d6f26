// Hot-path benchmark: a credential provider call when the credentials are
// cached, credstate's fromInstanceMetadata side by side with
// @smithy/credential-provider-imds wrapped in @smithy/core's
// memoizeIdentityProvider (as the AWS SDK wraps credential providers),
// against the same mock IMDS in the same run.
//
//   cargo xtask wasm && node wasm/js/bench/hot-path.js   (or: cargo xtask wasm-bench)
//
// Prints nanoseconds per call (median of several rounds, the contenders
// interleaved so that machine noise hits both) and the ratios. Reported as
// ratios, never asserted: timings belong to no test.

import { fromInstanceMetadata as smithyInstanceMetadata } from '@smithy/credential-provider-imds';
import { doesIdentityRequireRefresh, isIdentityExpired, memoizeIdentityProvider } from '@smithy/core';

import { fromInstanceMetadata } from '../../pkg/node.js';
import { HttpImds } from '../test/support.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 15);
const CALLS = Number(process.env.BENCH_CALLS ?? 200_000);
const BURST = 1000;

const imds = await new HttpImds().start();
// The smithy provider reads its endpoint from the environment only.
process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT = imds.endpoint;

const contenders = {
  credstate: fromInstanceMetadata({ endpoint: imds.endpoint }),
  'smithy (memoized)': memoizeIdentityProvider(
    smithyInstanceMetadata({ timeout: 1000 }),
    isIdentityExpired,
    doesIdentityRequireRefresh,
  ),
  'credstate (memoized, as the SDK wraps it)': memoizeIdentityProvider(
    fromInstanceMetadata({ endpoint: imds.endpoint }),
    isIdentityExpired,
    doesIdentityRequireRefresh,
  ),
};

for (const [name, provider] of Object.entries(contenders)) {
  const identity = await provider();
  if (!identity.accessKeyId.startsWith('ASIAHTTP')) throw new Error(`${name} returned unexpected credentials`);
}
const requestsAfterWarmUp = imds.requests.length;

async function sequential(provider) {
  const started = process.hrtime.bigint();
  for (let call = 0; call < CALLS; call++) await provider();
  return Number(process.hrtime.bigint() - started) / CALLS;
}

async function burst(provider) {
  const started = process.hrtime.bigint();
  for (let round = 0; round < CALLS / BURST; round++) {
    const calls = new Array(BURST);
    for (let call = 0; call < BURST; call++) calls[call] = provider();
    await Promise.all(calls);
  }
  return Number(process.hrtime.bigint() - started) / CALLS;
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

const results = {};
for (const [shape, measure] of Object.entries({ 'sequential await': sequential, [`bursts of ${BURST}`]: burst })) {
  const samples = Object.fromEntries(Object.keys(contenders).map((name) => [name, []]));
  for (let round = 0; round < ROUNDS + 2; round++) {
    const names = Object.keys(contenders);
    if (round % 2 === 1) names.reverse();
    for (const name of names) {
      const nanos = await measure(contenders[name]);
      // The first two rounds warm the JIT.
      if (round >= 2) samples[name].push(nanos);
    }
  }
  results[shape] = Object.fromEntries(Object.entries(samples).map(([name, values]) => [name, median(values)]));
}

if (imds.requests.length !== requestsAfterWarmUp) {
  throw new Error(`the hot path reached IMDS (${imds.requests.length - requestsAfterWarmUp} requests)`);
}

console.log(`node ${process.version}, ${CALLS} calls per sample, median of ${ROUNDS} rounds`);
for (const [shape, medians] of Object.entries(results)) {
  console.log(`\n${shape}:`);
  const ours = medians.credstate;
  for (const [name, nanos] of Object.entries(medians)) {
    const ratio = name === 'credstate' ? '' : `  (${(nanos / ours).toFixed(2)}x credstate's time)`;
    console.log(`  ${name.padEnd(44)} ${nanos.toFixed(1).padStart(8)} ns/call${ratio}`);
  }
}

await imds.stop();

// Entry point for bundlers and browsers: the wasm module is fetched and
// instantiated on first use (next to this file), or earlier with
// `initialize()`; hosts that load modules themselves (e.g. edge runtimes)
// pass a compiled `WebAssembly.Module` to `initialize` or `initSync`.
import init, { initSync, CredentialsMachine } from './credstate_wasm.js';
import { providerFactory } from './provider.js';

let loading;
let loaded = false;

/**
 * Instantiate the wasm module: from `moduleOrPath` (a `WebAssembly.Module`,
 * bytes, a URL or a `Response`) or, by default, by fetching the .wasm next to
 * this file. Later calls return the same promise; a failed attempt may be
 * retried.
 */
export function initialize(moduleOrPath) {
  loading ??= init(moduleOrPath === undefined ? undefined : { module_or_path: moduleOrPath }).then(
    (exports) => {
      loaded = true;
      return exports;
    },
    (error) => {
      loading = undefined;
      throw error;
    },
  );
  return loading;
}

/** The credstate refresh engine as an AWS SDK v3 credential provider. */
export const fromInstanceMetadata = providerFactory({
  ready: () => (loaded ? CredentialsMachine : undefined),
  load: () => initialize().then(() => CredentialsMachine),
});

export { CredentialsMachine, initSync };

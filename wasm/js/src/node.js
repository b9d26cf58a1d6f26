// Entry point for Node.js, Deno and Bun: the wasm module is instantiated
// synchronously at import, so providers are ready at once.
import { readFileSync } from 'node:fs';
import { initSync, CredentialsMachine } from './credstate_wasm.js';
import { providerFactory } from './provider.js';

initSync({ module: readFileSync(new URL('./credstate_wasm_bg.wasm', import.meta.url)) });

/** The credstate refresh engine as an AWS SDK v3 credential provider. */
export const fromInstanceMetadata = providerFactory({
  ready: () => CredentialsMachine,
  load: async () => CredentialsMachine,
});

/** Present for code shared with the browser entry: here the module is ready at import. */
export async function initialize() {}

export { CredentialsMachine };

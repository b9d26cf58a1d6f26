// The built package as a user installs it: its manifest, its entry points
// (ESM, require, the browser entry), its types and its wasm imports.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { HttpImds } from './support.js';

const pkg = fileURLToPath(new URL('../../pkg/', import.meta.url));
const manifest = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8'));

function node(args, cwd) {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { cwd, timeout: 20_000 }, (error, stdout, stderr) =>
      error ? reject(Object.assign(error, { stderr })) : resolve(stdout.trim()),
    );
  });
}

/** A project directory with the package installed under node_modules. */
function project(t) {
  const dir = mkdtempSync(join(tmpdir(), 'credstate-pkg-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(pkg, join(dir, 'node_modules', 'credstate'), 'dir');
  return dir;
}

test('the manifest names the package and lists every file it ships', () => {
  assert.equal(manifest.name, 'credstate');
  assert.match(manifest.version, /^\d+\.\d+\.\d+/);
  const shipped = readdirSync(pkg).filter((name) => name !== 'package.json').sort();
  assert.deepEqual([...manifest.files].sort(), shipped);
  for (const target of Object.values(manifest.exports['.'])) assert.ok(existsSync(join(pkg, target)), target);
});

test('the wasm module imports nothing from env', () => {
  const module = new WebAssembly.Module(readFileSync(join(pkg, 'credstate_wasm_bg.wasm')));
  const imports = WebAssembly.Module.imports(module);
  assert.ok(imports.length > 0);
  assert.deepEqual(imports.filter((entry) => entry.module === 'env'), []);
});

test('the types declare the provider, its options and the machine', () => {
  const types = readFileSync(join(pkg, 'index.d.ts'), 'utf8');
  assert.match(types, /export function fromInstanceMetadata\(/);
  assert.match(types, /interface InstanceMetadataOptions/);
  const machineTypes = readFileSync(join(pkg, 'credstate_wasm.d.ts'), 'utf8');
  assert.match(machineTypes, /export class CredentialsMachine/);
  assert.match(machineTypes, /demand\(now: number\): MachineDemand;/);
});

test('import and require by package name reach the Node entry', async (t) => {
  const imds = await new HttpImds().start();
  t.after(() => imds.stop());
  const dir = project(t);
  const endpoint = JSON.stringify(imds.endpoint);
  const imported = await node(
    [
      '--input-type=module',
      '-e',
      `import { fromInstanceMetadata, CredentialsMachine } from 'credstate';
       const identity = await fromInstanceMetadata({ endpoint: ${endpoint} })();
       console.log(typeof CredentialsMachine, identity.accessKeyId);`,
    ],
    dir,
  );
  assert.equal(imported, 'function ASIAHTTP1');

  if (process.features.require_module) {
    const required = await node(
      ['--no-warnings', '-e', `const { fromInstanceMetadata } = require('credstate'); console.log(typeof fromInstanceMetadata);`],
      dir,
    );
    assert.equal(required, 'function');
  } else {
    t.diagnostic('this Node cannot require() ES modules; require() was not checked');
  }
});

test('the browser entry instantiates the wasm on first use', async (t) => {
  const imds = await new HttpImds().start();
  t.after(() => imds.stop());
  const browser = new URL('browser.js', `file://${pkg}`).href;
  const wasm = join(pkg, 'credstate_wasm_bg.wasm');
  // Node's fetch cannot load file: URLs, so the bytes are handed over as a
  // host without fetch would; the provider then waits for the instance.
  const out = await node([
    '--input-type=module',
    '-e',
    `import { readFileSync } from 'node:fs';
     import { initialize, fromInstanceMetadata } from ${JSON.stringify(browser)};
     const credentials = fromInstanceMetadata({ endpoint: ${JSON.stringify(imds.endpoint)} });
     await initialize(readFileSync(${JSON.stringify(wasm)}));
     console.log((await credentials()).accessKeyId);`,
  ]);
  assert.equal(out, 'ASIAHTTP1');
});

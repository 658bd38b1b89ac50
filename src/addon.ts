// The native addon (native/, binding.gyp), loaded once per process. Each user declares the
// part of it that it calls — bpf/native.ts (BPF objects, maps, XDP, test runs) and
// vrrp/sockets.ts (raw sockets) — so neither loads the addon through the other.
//
// Loading: node-gyp-build from the package root, so a compiled build/Release/xdirector.node
// (building from source: npm run build:native) is used when present, and otherwise
// prebuilds/linux-x64/*.node shipped in the package (npm run prebuild). Set PREBUILDS_ONLY=1
// to force the prebuild.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { XdError } from './errors';

/** The package root: the nearest ancestor of this file holding binding.gyp. */
export function packageRoot(): string {
  let dir = __dirname;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'binding.gyp')) && fs.existsSync(path.join(dir, 'package.json'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new XdError('XD_ERR_NATIVE_MISSING', `cannot find the xdirector package root (binding.gyp) above ${__dirname}`);
    dir = up;
  }
}

let cached: object | undefined;

/** The addon's exports, loaded once; throws XD_ERR_NATIVE_MISSING with the fix. Callers cast to the part they declare. */
export function loadAddon(): object {
  if (cached) return cached;
  const root = packageRoot();
  try {
    const load = require('node-gyp-build') as (dir: string) => object;
    cached = load(root);
  } catch (err) {
    const inner = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new XdError(
      'XD_ERR_NATIVE_MISSING',
      `load native addon from ${root}: ${inner}; fix: run npm run build:native (needs libbpf-dev, a C++ compiler), or install a package with prebuilds/`,
      { cause: err },
    );
  }
  return cached;
}

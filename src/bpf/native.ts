// native.ts: the BPF part of the xdirector addon (native/, binding.gyp), loaded by
// src/addon.ts. The addon is thin and knows no layouts; everything here is raw:
// fds, Buffers, numeric handles. Use the typed wrappers (object.ts, map.ts,
// xdp.ts) instead of calling it directly: they validate, add context to errors
// and keep handles private. The addon's surface is declared once, in src/addon.ts.
import { loadAddon, packageRoot, type NativeAddon } from '../addon';

export { packageRoot };

export { isNativeSystemError } from '../addon';
export type {
  NativeSystemError,
  NativeMapShape,
  NativeMapDesc,
  NativeProgDesc,
  NativeGlobalDesc,
  NativeMapInfo,
  NativeProgInfo,
  NativeAttachMode,
  NativeXdpQuery,
  NativeTestRunOptions,
  NativeTestRunResult,
  NativeConstants,
  NativeAddon,
} from '../addon';

/** The addon's BPF functions (loaded once per process); throws XD_ERR_NATIVE_MISSING with the fix. */
export function getNative(): NativeAddon {
  return loadAddon();
}

// xdp.ts: attach / detach / query XDP programs on an interface, with errors
// that name the interface, the mode and the errno, and say how to fix it.
//
// Interfaces are resolved in the calling process's network namespace.
import { XdError } from '../errors';
import { getNative, isNativeSystemError, NativeAttachMode } from './native';

export type XdpMode = 'native' | 'generic';

export interface XdpQueryResult {
  /** What is attached: none, native (driver), generic (skb), offload, or multi (several modes at once). */
  mode: NativeAttachMode;
  /** The program id when exactly one mode is attached, else 0. */
  programId: number;
  /** Program id per mode (0 = none). */
  programs: { native: number; generic: number; offload: number };
}

export interface AttachOptions {
  /**
   * false (default): fail with EBUSY if a program is already attached in this mode.
   * true: replace whatever program is attached in this mode.
   * {expectedFd}: replace atomically only if the attached program is that one
   * (XDP_FLAGS_REPLACE), so two control planes cannot overwrite each other.
   */
  replace?: boolean | { expectedFd: number };
}

export interface Interface {
  ifindex: number;
  ifname: string;
}

/** Resolves an interface name or index (an index is taken as is). */
export function resolveInterface(iface: string | number): Interface {
  if (typeof iface === 'number') {
    if (!Number.isInteger(iface) || iface <= 0)
      throw new TypeError(`interface: expected a name or a positive ifindex, received number ${iface}`);
    return { ifindex: iface, ifname: `ifindex ${iface}` };
  }
  if (typeof iface !== 'string' || iface.length === 0 || iface.length > 15) {
    throw new TypeError(
      `interface: expected an interface name (1-15 characters) or ifindex, received ${typeof iface} ${String(iface)}`,
    );
  }
  try {
    return { ifindex: getNative().ifNameToIndex(iface), ifname: iface };
  } catch (e) {
    throw new XdError(
      'XD_ERR_INTERFACE',
      `interface ${iface}: ${(e as Error).message}; fix: check the interface name (ip link) and the network namespace`,
      {
        cause: e,
        detail: { interface: iface, ...(isNativeSystemError(e) ? { errno: e.errno, code: e.code } : {}) },
      },
    );
  }
}

function modeFlags(mode: XdpMode): number {
  const c = getNative().constants;
  if (mode === 'native') return c.XDP_FLAGS_DRV_MODE;
  if (mode === 'generic') return c.XDP_FLAGS_SKB_MODE;
  throw new TypeError(`xdp mode: expected 'native' or 'generic', received ${typeof mode} ${String(mode)}`);
}

function fixFor(code: string, ifname: string, mode: XdpMode, attached?: XdpQueryResult): string {
  switch (code) {
    case 'EOPNOTSUPP':
    case 'ENOTSUP':
      return mode === 'native'
        ? `native XDP not supported by ${ifname}: use xdp.mode generic`
        : `XDP not supported by ${ifname}: use the IPVS dataplane`;
    case 'EBUSY':
    case 'EEXIST':
      return attached && attached.mode !== 'none'
        ? `${ifname} already has an XDP program (id ${attached.programId || `${attached.programs.native}/${attached.programs.generic}`}, ${attached.mode} mode): detach it (ip link set ${ifname} xdp off) or attach with replace`
        : `${ifname} already has an XDP program in another mode: detach it first`;
    case 'EPERM':
    case 'EACCES':
      return 'attaching XDP needs CAP_NET_ADMIN and CAP_BPF: run as root';
    case 'ENODEV':
      return `interface ${ifname} does not exist in this network namespace`;
    case 'ERANGE':
    case 'EINVAL':
      return mode === 'native'
        ? `the MTU of ${ifname} may be too large for native XDP: lower it or use xdp.mode generic`
        : 'check the program type (must be XDP)';
    default:
      return 'see the errno';
  }
}

function attachError(op: string, ifc: Interface, mode: XdpMode, e: unknown): XdError {
  if (!isNativeSystemError(e))
    return new XdError('XD_ERR_XDP_ATTACH', `${op} xdp ${ifc.ifname} (${mode} mode): ${(e as Error).message}`, {
      cause: e,
    });
  let attached: XdpQueryResult | undefined;
  try {
    attached = query(ifc.ifindex);
  } catch {
    attached = undefined;
  }
  const code = e.code === 'ENODEV' ? 'XD_ERR_INTERFACE' : 'XD_ERR_XDP_ATTACH';
  return new XdError(
    code,
    `${op} xdp ${op === 'attach' ? 'to' : 'from'} ${ifc.ifname} (${mode} mode): ${e.message} (${e.code}); fix: ${fixFor(e.code, ifc.ifname, mode, attached)}`,
    {
      cause: e,
      detail: { interface: ifc.ifname, ifindex: ifc.ifindex, mode, errno: e.errno, code: e.code, syscall: e.syscall },
    },
  );
}

/** Attaches an XDP program (fd or {fd}) to an interface in the given mode. */
export function attach(
  iface: string | number,
  prog: number | { fd: number },
  mode: XdpMode,
  opts: AttachOptions = {},
): void {
  const ifc = resolveInterface(iface);
  const fd = typeof prog === 'number' ? prog : prog.fd;
  const c = getNative().constants;
  let flags = modeFlags(mode);
  let expected: number | undefined;
  if (opts.replace === undefined || opts.replace === false) flags |= c.XDP_FLAGS_UPDATE_IF_NOEXIST;
  else if (typeof opts.replace === 'object') expected = opts.replace.expectedFd;
  try {
    getNative().xdpAttach(ifc.ifindex, fd, flags, expected);
  } catch (e) {
    if (e instanceof TypeError) throw e;
    throw attachError('attach', ifc, mode, e);
  }
}

/**
 * Detaches the XDP program attached in `mode`. With expectedFd, only if that
 * program is the attached one. Nothing attached is not an error.
 */
export function detach(iface: string | number, mode: XdpMode, opts: { expectedFd?: number } = {}): void {
  const ifc = resolveInterface(iface);
  try {
    getNative().xdpDetach(ifc.ifindex, modeFlags(mode), opts.expectedFd);
  } catch (e) {
    if (e instanceof TypeError) throw e;
    throw attachError('detach', ifc, mode, e);
  }
}

/** How the program with id `programId` is attached, in what `query()` returned: 'detached' when it is
 * neither the native nor the generic program (another program replaced it, or nothing is attached). */
export function modeOf(q: XdpQueryResult, programId: number): 'native' | 'generic' | 'detached' {
  return q.programs.native === programId ? 'native' : q.programs.generic === programId ? 'generic' : 'detached';
}

/** What is attached to an interface. */
export function query(iface: string | number): XdpQueryResult {
  const ifc = resolveInterface(iface);
  try {
    const q = getNative().xdpQuery(ifc.ifindex);
    return {
      mode: q.attachMode,
      programId: q.progId,
      programs: { native: q.drvProgId, generic: q.skbProgId, offload: q.hwProgId },
    };
  } catch (e) {
    if (e instanceof TypeError) throw e;
    const code = isNativeSystemError(e) && e.code === 'ENODEV' ? 'XD_ERR_INTERFACE' : 'XD_ERR_XDP_ATTACH';
    throw new XdError(code, `query xdp on ${ifc.ifname}: ${(e as Error).message}`, {
      cause: e,
      detail: { interface: ifc.ifname, ifindex: ifc.ifindex },
    });
  }
}

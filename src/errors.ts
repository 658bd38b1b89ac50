// One error catalogue with stable codes. Each code has a documented meaning;
// messages chain context outer to inner ("attach xdp to eth0: bpf_xdp_attach:
// Operation not supported") and the inner error is kept as `cause`.
// Add new codes here, grouped by area, with a one-line meaning.

export const codes = {
  // config
  XD_ERR_CONFIG_READ: 'the config file could not be read',
  XD_ERR_CONFIG_PARSE: 'the config file is not valid YAML',
  XD_ERR_CONFIG_INVALID: 'the config file is valid YAML but breaks a rule (key path and problem in the message)',
  // bpf / native
  XD_ERR_NATIVE_MISSING: 'the native addon could not be loaded (not built for this platform)',
  XD_ERR_BPF_OBJECT: 'the compiled BPF object is missing or unreadable',
  XD_ERR_BPF_LOAD: 'the kernel refused to load the XDP program (verifier log attached)',
  XD_ERR_BPF_MAP: 'a BPF map operation failed',
  XD_ERR_BPF_PIN: 'pinning or opening a pinned BPF object failed',
  XD_ERR_PIN_DIR_UNSAFE:
    'a pin directory, or one between it and the bpffs mount, is a symlink, not a directory, not on bpffs, owned by another user or writable by group or other, or holds something that is not a bpffs object: nothing is pinned or removed there',
  XD_ERR_LAYOUT_MISMATCH: 'pinned maps were created with another layout than this build uses',
  XD_ERR_XDP_ATTACH: 'attaching or detaching the XDP program failed',
  XD_ERR_XDP_VETH_PEER:
    'native XDP on a veth whose peer runs no XDP program: every forwarded frame would be dropped by the driver',
  XD_ERR_BPF_TEST_RUN: 'BPF_PROG_TEST_RUN failed (bad packet, context, flags or program fd)',
  XD_ERR_INTERFACE: 'the network interface does not exist or cannot be used',
  // dataplane
  XD_ERR_CAPACITY: 'the desired state does not fit the loaded limits (services, backends, ring size)',
  XD_ERR_RING: 'a Maglev or IPVS-mh table could not be built from the given size and backends',
  XD_ERR_NEIGHBOUR: 'a backend MAC address could not be resolved',
  XD_ERR_IPVS: 'an IPVS generic netlink operation failed',
  XD_ERR_IPVS_MISSING: 'the kernel has no IPVS (generic netlink family IPVS not found)',
  XD_ERR_NO_DATAPLANE: 'neither XDP nor IPVS could be used',
  XD_ERR_NETLINK: 'an rtnetlink operation failed',
  XD_ERR_SYSCTL:
    'a kernel setting the dataplane needs (NAT: forwarding, ICMP redirects) could not be read or set; the key, the reason and the fix are in the message',
  // health
  XD_ERR_HEALTH: 'a health check failed',
  XD_ERR_HEALTH_PASSWORD: 'the monitor password could not be read (monitor.password_file or monitor.password_env)',
  // vrrp
  XD_ERR_VRRP: 'a VRRP socket or packet operation failed',
  XD_ERR_VRRP_PACKET: 'a received VRRP packet was invalid and dropped',
  // bgp
  XD_ERR_BGP: 'the BGP daemon (BIRD) could not be started, reached or controlled',
  // connection sync
  XD_ERR_SYNC: 'connection sync between directors failed (its socket, key file or maps; the cause in the message)',
  // admin api / cli
  XD_ERR_API: 'the admin API could not be reached or refused the request',
  XD_ERR_NOT_FOUND: 'the named object (backend, service, instance) does not exist',
  XD_ERR_USAGE: 'the command line is wrong',
  XD_ERR_PERMISSION:
    'the command needs privileges this process lacks (root: CAP_NET_ADMIN, CAP_BPF); which ones in the message',
  XD_ERR_INSTANCE_RUNNING:
    'another daemon of the same instance is running (its pid in the message); the second start changed nothing',
  // daemon state kept on disk
  XD_ERR_STATE_FILE:
    'a file the daemon keeps between runs (the drained backends) is unreadable, corrupt or unsafe (a symlink, not a regular file, another owner); the path and the fix are in the message',
  XD_ERR_REALSERVER:
    'preparing or checking a real server failed (the ip command or sysctl and its error in the message)',
} as const;

export type XdErrorCode = keyof typeof codes;

/**
 * An error with a stable code from a catalogue, machine-readable detail and the inner error as
 * `cause`: the product's XdError below, and the tooling's ToolError (scripts/errors.ts), whose
 * codes stay out of this catalogue.
 */
export class CodedError<C extends string> extends Error {
  readonly code: C;
  /** Extra machine-readable detail (errno, interface, key path, verifier log, ...). */
  readonly detail: Record<string, unknown>;

  constructor(code: C, message: string, opts: { cause?: unknown; detail?: Record<string, unknown> } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    this.detail = opts.detail ?? {};
  }
}

export class XdError extends CodedError<XdErrorCode> {}

/** "context: inner message", the outer-to-inner chain every wrapped error's message follows. */
export function chainMessage(context: string, err: unknown): string {
  return `${context}: ${err instanceof Error ? err.message : String(err)}`;
}

/** "outer: inner" chaining helper: wraps any error with context, keeping it as cause. */
export function wrap(code: XdErrorCode, context: string, err: unknown, detail?: Record<string, unknown>): XdError {
  return new XdError(code, chainMessage(context, err), { cause: err, detail });
}

// Defaults that more than one part uses, defined once here at the ground floor so the CLI, the
// config and the real-server setup agree without the CLI loading the config's parser.

/** The run directory (tmpfs: gone at reboot, like what it holds): admin sockets, the real server's tunnel record. */
export const DEFAULT_RUN_DIR = '/run/xdirector';

/** Where the admin sockets live when admin.socket is not set. */
export const DEFAULT_SOCKET_DIR = DEFAULT_RUN_DIR;

/** The admin socket of an instance when admin.socket is not set. */
export function defaultSocketPath(instance: string): string {
  return `${DEFAULT_SOCKET_DIR}/${instance}.sock`;
}

/** GUE's UDP port when the config gives none (what Linux examples use: ip fou add port 6080 gue); the real server's default too. */
export const DEFAULT_GUE_PORT = 6080;

// ---- the XDP program's tables and rates (config `xdp:` defaults; the dataplane's when a caller gives none)

/** Flow table entries (per family). */
export const DEFAULT_FLOW_TABLE_SIZE = 1_048_576;
/** Flows whose handshake has not completed (per family): what a spoofed SYN flood churns instead of the flow table. */
export const DEFAULT_EMBRYONIC_TABLE_SIZE = 65_536;
/**
 * Proven flows per second, all CPUs together, that may enter the flow table (0 = no limit). A
 * spoofer needs to keep each fake flow going for a second to get that far; an established flow
 * idle for less than flow_table_size / new_flow_rate seconds (100 s at the defaults) is never
 * evicted. Flows above it stay in the probation table, still served.
 */
export const DEFAULT_NEW_FLOW_RATE = 10_000;
/** Each takeover table (flows that did not complete a handshake here: what a bare-ACK flood churns) and each probation table (new flows until proven: what a flood of fake handshakes churns), per family. */
export const DEFAULT_TAKEOVER_TABLE_SIZE = 262_144;
/**
 * A SYN reusing the 5-tuple of a tracked flow starts a new connection (rescheduled on the live
 * ring) only if the flow saw no packet for this long (ms); a flow with recent traffic keeps its
 * backend, as IPVS conn_reuse_mode reschedules only a connection that is over. Above the ~1.3 s
 * granularity of the flow entry's last-seen time, far below a client's 60 s TIME_WAIT.
 */
export const DEFAULT_SYN_REUSE_IDLE_MS = 2000;
/** The director's own ICMP frag needed / PTB answers per second, all CPUs (0 = no limit); the kernel's icmp_msgs_per_sec is 1000 too. */
export const DEFAULT_TOO_BIG_RATE = 1000;
export const DEFAULT_MAX_SERVICES = 64;
export const DEFAULT_MAX_BACKENDS = 4096;

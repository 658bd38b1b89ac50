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

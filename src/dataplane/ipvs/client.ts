// IPVS client over generic netlink: the `netlink` package provides the socket, sequence numbers,
// multipart handling and the nlctrl family lookup structs; the IPVS attributes come from codec.ts.
// Every kernel error becomes an XdError carrying the errno and what was being done:
// "add dest 10.77.0.11:3306 to TCP 10.77.0.100:3306: File exists".

import { getSystemErrorMap } from 'node:util';
import { genl, AttrStream, createGenericNetlink, GenericNetlinkSocket } from 'netlink';
import type { Logger } from '../../log';
import { XdError } from '../../errors';
import {
  IPVS_GENL_NAME,
  IPVS_GENL_VERSION,
  NLMSG_HDRLEN,
  GENL_HDRLEN,
  genlHeader,
  hostPort,
  req,
  serviceLabel,
  parseDestReply,
  parseInfoReply,
  parseServiceReply,
  IpvsDest,
  IpvsDestEntry,
  IpvsInfo,
  IpvsRequest,
  IpvsService,
  IpvsServiceEntry,
  IpvsServiceKey,
} from './codec';

const NLMSG_ERROR = 2;
const GENL_ID_CTRL = 16;
const CTRL_CMD_GETFAMILY = 3;
const CTRL_VERSION = 1;

/** glibc's strerror() text for the errnos netlink and IPVS return (what ipvsadm prints). */
const STRERROR: Record<number, string> = {
  1: 'Operation not permitted',
  2: 'No such file or directory',
  3: 'No such process',
  12: 'Cannot allocate memory',
  13: 'Permission denied',
  14: 'Bad address',
  16: 'Device or resource busy',
  17: 'File exists',
  19: 'No such device',
  22: 'Invalid argument',
  34: 'Numerical result out of range',
  42: 'No message of desired type',
  90: 'Message too long',
  95: 'Operation not supported',
  97: 'Address family not supported by protocol',
  105: 'No buffer space available',
  110: 'Connection timed out',
};

/** A kernel errno as a code ('EEXIST') and glibc text ('File exists'). */
export function describeErrno(errno: number): { code: string; text: string } {
  const n = Math.abs(errno);
  const sys = getSystemErrorMap().get(-n);
  return { code: sys?.[0] ?? `errno ${n}`, text: STRERROR[n] ?? sys?.[1] ?? `errno ${n}` };
}

/** An error the kernel returned in an NLMSG_ERROR reply. */
export class NetlinkError extends Error {
  readonly errno: number;
  readonly code: string;
  readonly syscall = 'netlink';
  constructor(errno: number) {
    const { code, text } = describeErrno(errno);
    super(text);
    this.name = 'NetlinkError';
    this.errno = Math.abs(errno);
    this.code = code;
  }
}

export const MISSING_FAMILY_MESSAGE =
  'IPVS: generic netlink family IPVS not found — load the ip_vs module (modprobe ip_vs ip_vs_mh)';

export interface IpvsClientOptions {
  log?: Logger;
  /** Per-request timeout in ms (default 5000). */
  timeoutMs?: number;
}

type RawMessage = { type: number; flags: number; seq: number; port: number; data: Buffer };

export class IpvsClient {
  readonly familyId: number;
  readonly familyVersion: number;
  private readonly sock: GenericNetlinkSocket;
  private readonly timeoutMs: number;
  private closed = false;

  private constructor(sock: GenericNetlinkSocket, familyId: number, familyVersion: number, timeoutMs: number) {
    this.sock = sock;
    this.familyId = familyId;
    this.familyVersion = familyVersion;
    this.timeoutMs = timeoutMs;
  }

  /**
   * Open a generic netlink socket in the caller's network namespace and resolve the IPVS family.
   * Throws XD_ERR_IPVS_MISSING when the kernel has no IPVS (nlctrl answers ENOENT).
   */
  static async open(opts: IpvsClientOptions = {}): Promise<IpvsClient> {
    const timeoutMs = opts.timeoutMs ?? 5000;
    let sock: GenericNetlinkSocket;
    try {
      sock = createGenericNetlink();
    } catch (err) {
      throw new XdError('XD_ERR_IPVS', `IPVS: open generic netlink socket: ${(err as Error).message}`, { cause: err });
    }
    try {
      const attrs = new AttrStream();
      attrs.emit(genl.formatMessage({ familyName: IPVS_GENL_NAME }));
      const msgs = await rawRequest(
        sock,
        GENL_ID_CTRL,
        [
          genlHeader(CTRL_CMD_GETFAMILY, CTRL_VERSION),
          ...attrs.bufs.map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength)),
        ],
        0,
        timeoutMs,
      );
      const reply = msgs[0];
      if (!reply) throw new Error('nlctrl sent no reply to GETFAMILY');
      const fam = genl.parseMessage(reply.data.subarray(GENL_HDRLEN));
      if (fam.familyId === undefined) throw new Error('nlctrl reply without a family id');
      if (fam.version !== undefined && fam.version < IPVS_GENL_VERSION) {
        throw new Error(`family IPVS has version ${fam.version}, need ${IPVS_GENL_VERSION}`);
      }
      opts.log?.debug({ familyId: fam.familyId, version: fam.version }, 'IPVS generic netlink family resolved');
      return new IpvsClient(sock, fam.familyId, fam.version ?? IPVS_GENL_VERSION, timeoutMs);
    } catch (err) {
      sock.socket.close();
      if (err instanceof NetlinkError && err.errno === 2) {
        throw new XdError('XD_ERR_IPVS_MISSING', MISSING_FAMILY_MESSAGE, {
          cause: err,
          detail: { errno: err.errno, code: err.code, syscall: 'netlink' },
        });
      }
      throw new XdError('XD_ERR_IPVS', `IPVS: resolve generic netlink family IPVS: ${(err as Error).message}`, {
        cause: err,
        detail: err instanceof NetlinkError ? { errno: err.errno, code: err.code } : {},
      });
    }
  }

  /** Send one IPVS request; returns the reply messages' attribute payloads (empty for a plain ACK). */
  async request(r: IpvsRequest, context: string): Promise<Buffer[]> {
    if (this.closed) throw new XdError('XD_ERR_IPVS', `${context}: the IPVS client is closed`);
    try {
      const msgs = await rawRequest(this.sock, this.familyId, [genlHeader(r.cmd), r.attrs], r.flags, this.timeoutMs);
      return msgs.map((m) => m.data.subarray(GENL_HDRLEN));
    } catch (err) {
      const detail: Record<string, unknown> = { cmd: r.cmd };
      if (err instanceof NetlinkError) Object.assign(detail, { errno: err.errno, code: err.code });
      throw new XdError('XD_ERR_IPVS', `${context}: ${(err as Error).message}`, { cause: err, detail });
    }
  }

  async info(): Promise<IpvsInfo> {
    const [p] = await this.request(req.getInfo(), 'IPVS: get info');
    if (!p) throw new XdError('XD_ERR_IPVS', 'IPVS: get info: no reply');
    return parseInfoReply(p);
  }

  async listServices(): Promise<IpvsServiceEntry[]> {
    const replies = await this.request(req.dumpServices(), 'list IPVS services');
    return replies.map(parseServiceReply);
  }

  /** Destinations in the kernel's list order (the order `mh` walks when it fills its table). */
  async listDests(s: IpvsServiceKey): Promise<IpvsDestEntry[]> {
    const replies = await this.request(req.dumpDests(s), `list dests of ${serviceLabel(s)}`);
    return replies.map((p) => parseDestReply(p, s.af));
  }

  async addService(s: IpvsService): Promise<void> {
    await this.request(req.newService(s), `add ${serviceLabel(s)} (scheduler ${s.schedName})`);
  }

  async editService(s: IpvsService): Promise<void> {
    await this.request(req.setService(s), `update ${serviceLabel(s)} (scheduler ${s.schedName})`);
  }

  async deleteService(s: IpvsServiceKey): Promise<void> {
    await this.request(req.delService(s), `delete ${serviceLabel(s)}`);
  }

  async addDest(s: IpvsServiceKey, d: IpvsDest): Promise<void> {
    await this.request(
      req.newDest(s, d),
      `add dest ${hostPort(d.addr, d.port, d.addrFamily ?? s.af)} to ${serviceLabel(s)}`,
    );
  }

  async editDest(s: IpvsServiceKey, d: IpvsDest): Promise<void> {
    await this.request(
      req.setDest(s, d),
      `update dest ${hostPort(d.addr, d.port, d.addrFamily ?? s.af)} of ${serviceLabel(s)} (weight ${d.weight})`,
    );
  }

  async deleteDest(s: IpvsServiceKey, d: Pick<IpvsDest, 'addr' | 'port' | 'addrFamily'>): Promise<void> {
    await this.request(
      req.delDest(s, d),
      `delete dest ${hostPort(d.addr, d.port, d.addrFamily ?? s.af)} from ${serviceLabel(s)}`,
    );
  }

  /** Remove every service of this network namespace (ipvsadm -C). */
  async flush(): Promise<void> {
    await this.request(req.flush(), 'flush IPVS');
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sock.socket.close();
  }
}

/**
 * One request through the package's NetlinkSocket with its own ERROR handling, so the errno
 * survives (the package's checkError keeps only the code name in a string).
 */
async function rawRequest(
  sock: GenericNetlinkSocket,
  type: number,
  data: Buffer[],
  flags: number,
  timeoutMs: number,
): Promise<RawMessage[]> {
  const [msgs] = (await sock.socket.request(type, data, {
    flags,
    checkError: false,
    timeout: timeoutMs,
  })) as unknown as [RawMessage[], unknown];
  const out: RawMessage[] = [];
  for (const m of msgs) {
    if (m.type === NLMSG_ERROR) {
      if (m.data.length < 4 + NLMSG_HDRLEN) throw new Error('truncated netlink ERROR message');
      const errno = m.data.readInt32LE(0);
      if (errno !== 0) throw new NetlinkError(errno);
      continue; // ACK
    }
    out.push(m);
  }
  return out;
}

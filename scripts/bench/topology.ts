// The benchmark's own small topology:
//
//   client ns (eth0) ─┐
//   director ns (eth0)┼─ bridge ns: br0 with ports p-cl, p-dir, p-r1 … p-rN
//   rN ns (eth0) ─────┘
//
// Every namespace is named <prefix>-<role>, so a run owns its names and tears
// down exactly what it made. Interfaces live inside the namespaces (eth0 and
// p-*), never in the root namespace. MACs and bridge FDB entries are static:
// receivers that XDP_DROP everything never teach the bridge their MAC, and a
// flooded frame would be counted twice.
import { wrap } from '../../src/errors';
import { run, runIn } from '../lab/exec';
import { ToolError, toolWrap } from '../errors';

export interface Host {
  ns: string;
  /** eth0 address (IPv4) */
  ip: string;
  mac: string;
  /** bridge-side veth port in the bridge namespace */
  port: string;
}

export interface Topology {
  prefix: string;
  bridgeNs: string;
  client: Host;
  director: Host;
  receivers: Host[];
  vip: string;
  subnet: string;
  destroy(): Promise<void>;
}

const NET = '10.201.0';

function mac(last: number): string {
  return `02:00:0a:c9:00:${last.toString(16).padStart(2, '0')}`;
}

async function sysctl(ns: string, ...kv: string[]): Promise<void> {
  await runIn(ns, 'sysctl', ['-qw', ...kv]);
}

/** Remove namespaces by exact name (ignores ones that do not exist). */
export async function deleteNamespaces(names: string[]): Promise<void> {
  const { stdout } = await run('ip', ['netns', 'list']);
  const present = new Set(
    stdout
      .split('\n')
      .map((l) => l.split(' ')[0])
      .filter(Boolean),
  );
  for (const n of names) if (present.has(n)) await run('ip', ['netns', 'del', n], { allowFail: true });
}

/**
 * Build the topology. `receivers` real servers (1..8). On any failure the
 * namespaces made so far are removed before the error is thrown.
 */
export async function createTopology(prefix: string, receivers: number): Promise<Topology> {
  if (!/^[a-z0-9-]{1,40}$/.test(prefix))
    throw new ToolError('XD_ERR_BENCH', `topology prefix ${JSON.stringify(prefix)}: use 1–40 of a-z, 0-9, '-'`);
  if (!Number.isInteger(receivers) || receivers < 1 || receivers > 8)
    throw new ToolError('XD_ERR_BENCH', `topology: receivers must be 1..8, got ${receivers}`);
  const bridgeNs = `${prefix}-sw`;
  const client: Host = { ns: `${prefix}-cl`, ip: `${NET}.10`, mac: mac(0x10), port: 'p-cl' };
  const director: Host = { ns: `${prefix}-dir`, ip: `${NET}.2`, mac: mac(0x02), port: 'p-dir' };
  const rs: Host[] = Array.from({ length: receivers }, (_, i) => ({
    ns: `${prefix}-r${i + 1}`,
    ip: `${NET}.${11 + i}`,
    mac: mac(0x11 + i),
    port: `p-r${i + 1}`,
  }));
  const all = [bridgeNs, client.ns, director.ns, ...rs.map((h) => h.ns)];
  const topo: Topology = {
    prefix,
    bridgeNs,
    client,
    director,
    receivers: rs,
    vip: `${NET}.100`,
    subnet: `${NET}.0/24`,
    destroy: () => deleteNamespaces(all),
  };
  try {
    for (const n of all) await run('ip', ['netns', 'add', n]);
    await run('ip', ['-n', bridgeNs, 'link', 'add', 'br0', 'type', 'bridge']);
    await run('ip', ['-n', bridgeNs, 'link', 'set', 'br0', 'up']);
    // The bridge here must not hand frames to iptables (br_netfilter default is 1 where loaded).
    await runIn(bridgeNs, 'sysctl', ['-qw', 'net.bridge.bridge-nf-call-iptables=0'], { allowFail: true });
    for (const h of [client, director, ...rs]) {
      await run('ip', [
        'link',
        'add',
        'name',
        'eth0',
        'netns',
        h.ns,
        'address',
        h.mac,
        'type',
        'veth',
        'peer',
        'name',
        h.port,
        'netns',
        bridgeNs,
      ]);
      await sysctl(h.ns, 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1');
      await run('ip', ['-n', bridgeNs, 'link', 'set', h.port, 'master', 'br0', 'up']);
      await run('ip', ['-n', bridgeNs, 'link', 'set', h.port, 'type', 'bridge_slave', 'learning', 'off']);
      await run('bridge', ['-n', bridgeNs, 'fdb', 'replace', h.mac, 'dev', h.port, 'master', 'static']);
      await run('ip', ['-n', h.ns, 'addr', 'add', `${h.ip}/24`, 'dev', 'eth0']);
      await run('ip', ['-n', h.ns, 'link', 'set', 'lo', 'up']);
      await run('ip', ['-n', h.ns, 'link', 'set', 'eth0', 'up']);
    }
    await sysctl(bridgeNs, 'net.ipv6.conf.all.disable_ipv6=1');
    // Static neighbours everywhere: receivers may drop ARP (XDP_DROP counters).
    const hosts = [client, director, ...rs];
    for (const a of hosts) {
      for (const b of hosts) {
        if (a !== b)
          await run('ip', ['-n', a.ns, 'neigh', 'replace', b.ip, 'lladdr', b.mac, 'dev', 'eth0', 'nud', 'permanent']);
      }
    }
    // Real servers: the VIP on lo, never answering ARP for it (LVS-DR practice).
    for (const h of rs) {
      await run('ip', ['-n', h.ns, 'addr', 'add', `${topo.vip}/32`, 'dev', 'lo']);
      await sysctl(
        h.ns,
        'net.ipv4.conf.all.arp_ignore=1',
        'net.ipv4.conf.all.arp_announce=2',
        'net.ipv4.conf.all.rp_filter=0',
        'net.ipv4.conf.eth0.rp_filter=0',
      );
    }
    // Director: can forward (kernel path), never sends redirects for the one-armed hairpin.
    await sysctl(
      director.ns,
      'net.ipv4.ip_forward=1',
      'net.ipv4.conf.all.send_redirects=0',
      'net.ipv4.conf.eth0.send_redirects=0',
      'net.ipv4.conf.all.rp_filter=0',
      'net.ipv4.conf.eth0.rp_filter=0',
      'net.ipv4.fib_multipath_hash_policy=1',
    );
    // Many short connections in the MySQL section: reuse TIME_WAIT ports.
    for (const h of [client, director])
      await sysctl(h.ns, 'net.ipv4.tcp_tw_reuse=1', 'net.ipv4.ip_local_port_range=10000 65000');
  } catch (err) {
    await deleteNamespaces(all).catch(() => undefined);
    throw toolWrap('XD_ERR_BENCH', `create benchmark topology ${prefix}`, err);
  }
  return topo;
}

/** The VIP as a local address on the director (ARP for it answered by the director), or not. */
export async function setDirectorVip(t: Topology, present: boolean): Promise<void> {
  const args = ['-n', t.director.ns, 'addr', present ? 'replace' : 'del', `${t.vip}/32`, 'dev', 'eth0'];
  await run('ip', args, { allowFail: !present });
  for (const h of [t.client]) {
    if (present)
      await run('ip', [
        '-n',
        h.ns,
        'neigh',
        'replace',
        t.vip,
        'lladdr',
        t.director.mac,
        'dev',
        'eth0',
        'nud',
        'permanent',
      ]);
  }
}

/** Kernel path: VIP routed by ECMP over the real servers (hash on L4 ports: fib_multipath_hash_policy=1). */
export async function setKernelEcmp(t: Topology, on: boolean): Promise<void> {
  if (on) {
    const hops = t.receivers.flatMap((h) => ['nexthop', 'via', h.ip, 'dev', 'eth0']);
    await run('ip', ['-n', t.director.ns, 'route', 'replace', `${t.vip}/32`, ...hops]);
  } else {
    await run('ip', ['-n', t.director.ns, 'route', 'del', `${t.vip}/32`], { allowFail: true });
  }
}

/** XDP attach/detach by pinned program path, from inside the namespace (nsenter keeps bpffs visible). */
export async function xdpAttachPinned(
  ns: string,
  ifname: string,
  mode: 'native' | 'generic',
  pinPath: string,
): Promise<void> {
  const kind = mode === 'native' ? 'xdpdrv' : 'xdpgeneric';
  try {
    await runIn(ns, 'ip', ['link', 'set', 'dev', ifname, kind, 'pinned', pinPath], { mode: 'nsenter' });
  } catch (err) {
    throw wrap('XD_ERR_XDP_ATTACH', `attach ${pinPath} to ${ns}/${ifname} (${kind})`, err);
  }
}

export async function xdpDetach(ns: string, ifname: string): Promise<void> {
  for (const kind of ['xdpdrv', 'xdpgeneric'])
    await runIn(ns, 'ip', ['link', 'set', 'dev', ifname, kind, 'off'], { allowFail: true });
}

/** Turn TX checksum offload off (native XDP_TX of locally sent frames carries partial checksums, see bpf/README.md). */
export async function txChecksumOff(ns: string, ifname = 'eth0'): Promise<void> {
  await runIn(ns, 'ethtool', ['-K', ifname, 'tx', 'off']);
}

/**
 * The isolated director (its own cost, without the bridge hops): one veth pair, generator eth0 ⇄
 * director eth0, nothing else on the path. The director sends every frame
 * straight back to the generator, whose eth0 counts and drops it. For the
 * kernel path the director forwards (ip_forward=1) back out of eth0 via the
 * generator (route for the VIP, static neighbour).
 */
export interface IsolatedTopology {
  prefix: string;
  gen: Host;
  director: Host;
  vip: string;
  destroy(): Promise<void>;
}

const INET = '10.202.0';

export async function createIsolated(prefix: string): Promise<IsolatedTopology> {
  if (!/^[a-z0-9-]{1,40}$/.test(prefix))
    throw new ToolError('XD_ERR_BENCH', `topology prefix ${JSON.stringify(prefix)}: use 1–40 of a-z, 0-9, '-'`);
  const gen: Host = { ns: `${prefix}-ig`, ip: `${INET}.10`, mac: '02:00:0a:ca:00:10', port: '' };
  const director: Host = { ns: `${prefix}-id`, ip: `${INET}.2`, mac: '02:00:0a:ca:00:02', port: '' };
  const all = [gen.ns, director.ns];
  const topo: IsolatedTopology = { prefix, gen, director, vip: `${INET}.100`, destroy: () => deleteNamespaces(all) };
  try {
    for (const n of all) await run('ip', ['netns', 'add', n]);
    await run('ip', [
      'link',
      'add',
      'name',
      'eth0',
      'netns',
      gen.ns,
      'address',
      gen.mac,
      'type',
      'veth',
      'peer',
      'name',
      'eth0',
      'netns',
      director.ns,
      'address',
      director.mac,
    ]);
    for (const [h, other] of [
      [gen, director],
      [director, gen],
    ] as const) {
      await sysctl(h.ns, 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1');
      await run('ip', ['-n', h.ns, 'addr', 'add', `${h.ip}/24`, 'dev', 'eth0']);
      await run('ip', ['-n', h.ns, 'link', 'set', 'lo', 'up']);
      await run('ip', ['-n', h.ns, 'link', 'set', 'eth0', 'up']);
      await run('ip', [
        '-n',
        h.ns,
        'neigh',
        'replace',
        other.ip,
        'lladdr',
        other.mac,
        'dev',
        'eth0',
        'nud',
        'permanent',
      ]);
    }
    // Kernel path: forward the VIP back out of eth0 to the generator, no redirects, no reverse-path check.
    await sysctl(
      director.ns,
      'net.ipv4.ip_forward=1',
      'net.ipv4.conf.all.send_redirects=0',
      'net.ipv4.conf.eth0.send_redirects=0',
      'net.ipv4.conf.all.rp_filter=0',
      'net.ipv4.conf.eth0.rp_filter=0',
    );
    await run('ip', ['-n', director.ns, 'route', 'replace', `${topo.vip}/32`, 'via', gen.ip, 'dev', 'eth0']);
  } catch (err) {
    await deleteNamespaces(all).catch(() => undefined);
    throw toolWrap('XD_ERR_BENCH', `create isolated benchmark topology ${prefix}`, err);
  }
  return topo;
}

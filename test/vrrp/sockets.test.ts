// The addon's VRRP sockets: errors shaped like Node's SystemError with context,
// argument errors as TypeErrors, and a datagram round trip between two
// namespaces with the TTL and source the receiver needs.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { XdError } from '../../src/errors';
import { encodeAdvert } from '../../src/vrrp/codec';
import { VrrpSocket, vrrpAddon } from '../../src/vrrp/sockets';

describe('VRRP sockets (native)', () => {
  it('names the interface and carries errno, code and syscall when the interface does not exist', () => {
    let err: unknown;
    try {
      new VrrpSocket({ family: 4, ifname: 'xddnosuch0', multicast: true, onPacket: () => {} });
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof XdError);
    assert.equal(err.code, 'XD_ERR_VRRP');
    assert.match(
      err.message,
      /^open VRRP socket \(IPv4, protocol 112\) on xddnosuch0: if_nametoindex xddnosuch0: No such device/,
    );
    const cause = err.cause as { errno: number; code: string; syscall: string };
    assert.equal(cause.code, 'ENODEV');
    assert.equal(cause.errno, -19);
    assert.equal(cause.syscall, 'if_nametoindex xddnosuch0');
  });

  it('rejects a bad family with a TypeError saying what was expected and received', () => {
    const native = vrrpAddon();
    assert.throws(() => new native.VrrpSocket({ family: 5, ifname: 'lo', multicast: false, onPacket: () => {} }), {
      name: 'TypeError',
      message: /options\.family: expected 4 or 6, received number 5/,
    });
  });

  it('rejects a frame shorter than an Ethernet header', () => {
    assert.throws(() => vrrpAddon().sendFrame(1, Buffer.alloc(4)), { name: 'TypeError', message: /frame/ });
  });

  describe('between two namespaces', () => {
    const id = `xdd${process.pid}k`;
    const [n1, n2] = [`${id}1`, `${id}2`];
    before(() => {
      execFileSync('ip', ['netns', 'add', n1]);
      execFileSync('ip', ['netns', 'add', n2]);
      execFileSync('ip', ['-n', n1, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', n2]);
      execFileSync('ip', ['-n', n1, 'addr', 'add', '10.78.0.1/24', 'dev', 'eth0']);
      execFileSync('ip', ['-n', n2, 'addr', 'add', '10.78.0.2/24', 'dev', 'eth0']);
      execFileSync('ip', ['-n', n1, 'link', 'set', 'eth0', 'up']);
      execFileSync('ip', ['-n', n2, 'link', 'set', 'eth0', 'up']);
    });
    after(() => {
      for (const n of [n1, n2]) {
        try {
          execFileSync('ip', ['netns', 'del', n]);
        } catch {
          /* not created */
        }
      }
    });

    it('delivers a multicast advert with TTL 255 and the sender address, off the event loop', () => {
      // A child in n2 receives; a child in n1 sends; the receiver prints what it got.
      const mod = JSON.stringify(require.resolve('../../src/vrrp/sockets'));
      const codec = JSON.stringify(require.resolve('../../src/vrrp/codec'));
      const rx = `
        const { VrrpSocket } = require(${mod});
        const s = new VrrpSocket({ family: 4, ifname: 'eth0', multicast: true, onPacket: (p, m) => { console.log(JSON.stringify({ hex: p.toString('hex'), m })); s.close(); } });
        setTimeout(() => { console.log('timeout'); s.close(); }, 10000);
        console.error('ready');
      `;
      const tx = `
        const { VrrpSocket } = require(${mod});
        const { encodeAdvert } = require(${codec});
        const s = new VrrpSocket({ family: 4, ifname: 'eth0', multicast: false, onPacket() {} });
        const m = encodeAdvert({ version: 3, vrid: 9, priority: 200, intervalMs: 100, addresses: ['10.78.0.100'] }, { family: 4, src: '10.78.0.1', dst: '224.0.0.18' });
        for (let i = 0; i < 20; i++) setTimeout(() => s.send(m, '224.0.0.18', '10.78.0.1'), i * 100);
        setTimeout(() => s.close(), 2100);
      `;
      const { spawn } = require('node:child_process') as typeof import('node:child_process');
      return new Promise<void>((resolve, reject) => {
        const r = spawn('nsenter', [`--net=/run/netns/${n2}`, process.execPath, '-e', rx], {
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        r.stdout.on('data', (d) => (out += d));
        r.stderr.once('data', () => {
          execFileSync('nsenter', [`--net=/run/netns/${n1}`, process.execPath, '-e', tx]);
        });
        r.on('exit', () => {
          try {
            const got = JSON.parse(out.trim().split('\n')[0]!);
            const expected = encodeAdvert(
              { version: 3, vrid: 9, priority: 200, intervalMs: 100, addresses: ['10.78.0.100'] },
              { family: 4, src: '10.78.0.1', dst: '224.0.0.18' },
            );
            assert.equal(got.hex, expected.toString('hex'));
            assert.deepEqual(got.m, { family: 4, src: '10.78.0.1', dst: '224.0.0.18', ttl: 255 });
            resolve();
          } catch (e) {
            reject(new Error(`${(e as Error).message}; receiver printed: ${out}`));
          }
        });
      });
    });

    it('sends a gratuitous ARP frame that a neighbour with arp_accept learns the VIP from', () => {
      execFileSync('ip', ['netns', 'exec', n2, 'sysctl', '-qw', 'net.ipv4.conf.eth0.arp_accept=1']);
      // (/sys under nsenter --net still shows the host's devices: ask ip for the index.)
      const idx = Number(
        /^(\d+):/.exec(execFileSync('ip', ['-n', n1, '-o', 'link', 'show', 'eth0'], { encoding: 'utf8' }))![1],
      );
      const sockets = JSON.stringify(require.resolve('../../src/vrrp/sockets'));
      const frames = JSON.stringify(require.resolve('../../src/vrrp/frames'));
      execFileSync('nsenter', [
        `--net=/run/netns/${n1}`,
        process.execPath,
        '-e',
        `require(${sockets}).sendFrame(${idx}, require(${frames}).gratuitousArp(Buffer.from('020000000001', 'hex'), '10.78.0.100'), 'eth0')`,
      ]);
      const neigh = execFileSync('ip', ['-n', n2, 'neigh', 'show', '10.78.0.100'], { encoding: 'utf8' });
      assert.match(neigh, /lladdr 02:00:00:00:00:01/);
    });
  });
});

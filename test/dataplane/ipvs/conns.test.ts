// /proc/net/ip_vs_conn as the kernel prints it (ip_vs_conn_seq_show: "%-3s %08X %04X %08X %04X
// %08X %04X %-11s %7u", IPv6 addresses as %pI6), written by hand in that format (the first line
// is the VM scenario's silent NAT session). test/vm/daemon.test.ts parses the real table of 6.1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseIpvsConns } from '../../../src/dataplane/ipvs/conns';

const TABLE = `Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData
TCP 0A4D000A 9C43 0A4D0064 0CF3 0A4F000B 0CF2 ESTABLISHED     899
TCP 0A4D000A 6704 0A4D0064 0CEF 0A4F000B 0CEE TIME_WAIT       115
UDP 0A4D000A 1F90 0A4D0064 0035 0A4F000B 0035 UDP             299
TCP fd00:0077:0000:0000:0000:0000:0000:0010 9C44 fd00:0077:0000:0000:0000:0000:0000:0100 0CEF fd00:0079:0000:0000:0000:0000:0000:0011 0CEE ESTABLISHED     899
TCP 0A4D000A 0000 0A4D0064 0CEA 0A4D000B 0CEA NONE            359
TCP 0A4D000A 9C45 0A4D0064 0CEA 0A4D000C 0CEA SYN_RECV         59
`;

test('the live connections of /proc/net/ip_vs_conn: TCP established and UDP, IPv4 and IPv6, addresses canonical', () => {
  assert.deepEqual(parseIpvsConns(TABLE), [
    {
      family: 4,
      proto: 'tcp',
      client: '10.77.0.10',
      clientPort: 40003,
      vip: '10.77.0.100',
      vipPort: 3315,
      backend: '10.79.0.11',
      backendPort: 3314,
    },
    {
      family: 4,
      proto: 'udp',
      client: '10.77.0.10',
      clientPort: 8080,
      vip: '10.77.0.100',
      vipPort: 53,
      backend: '10.79.0.11',
      backendPort: 53,
    },
    {
      family: 6,
      proto: 'tcp',
      client: 'fd00:77::10',
      clientPort: 40004,
      vip: 'fd00:77::100',
      vipPort: 3311,
      backend: 'fd00:79::11',
      backendPort: 3310,
    },
  ]);
});

test('closing and half-open connections, templates (client port 0) and lines that do not parse are left out', () => {
  assert.deepEqual(parseIpvsConns(''), []);
  assert.deepEqual(
    parseIpvsConns(
      [
        'TCP 0A4D000A 6704 0A4D0064 0CEF 0A4F000B 0CEE TIME_WAIT       115',
        'TCP 0A4D000A 0000 0A4D0064 0CEA 0A4D000B 0CEA NONE            359',
        'TCP 0A4D000A 9C45 0A4D0064 0CEA 0A4D000C 0CEA SYN_RECV         59',
        'TCP 0A4D00 9C45 0A4D0064 0CEA 0A4D000C 0CEA ESTABLISHED 899',
        'TCP 0A4D000A 9C45 0A4D0064 0CEA fd00:zz::1 0CEA ESTABLISHED 899',
        'SCTP 0A4D000A 9C45 0A4D0064 0CEA 0A4D000C 0CEA ESTABLISHED 899',
      ].join('\n'),
    ),
    [],
  );
});

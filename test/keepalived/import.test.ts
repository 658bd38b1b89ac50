// import-keepalived: the keepalived.conf parser (comments, quotes, includes, block shapes) and the
// translation of three styles of real-world files into configs that check-config accepts.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import YAML from 'yaml';
import { parseConfig } from '../../src/config/load';
import { parseKeepalivedFile, parseKeepalivedText } from '../../src/keepalived/parse';
import { translateKeepalived } from '../../src/keepalived/translate';
import { runCommand } from '../../src/vrrp/exec';
import { importKeepalivedMain } from '../../src/keepalived/cli';
import { XdError } from '../../src/errors';

const ROOT = path.resolve(__dirname, '../../..');
const FIX = path.join(ROOT, 'test/fixtures/keepalived');
const BIN = path.join(ROOT, 'bin/xdirector.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `xdka${process.pid}-`));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/**
 * The command in process (its own code, output captured; a usage error thrown as bin/xdirector.js
 * would report it, exit 2): a process per case costs a second or more on a loaded machine.
 */
async function importCmd(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  const r = { status: 0, stdout: '', stderr: '' };
  try {
    r.status = await importKeepalivedMain(args, {
      stdout: (t) => {
        r.stdout += t;
      },
      stderr: (t) => {
        r.stderr += t;
      },
    });
  } catch (e) {
    assert.ok(e instanceof XdError, String(e));
    r.stderr += `xdirector: ${e.message}\n`;
    r.status = e.code === 'XD_ERR_USAGE' ? 2 : 1;
  }
  return r;
}

function imported(file: string) {
  const r = translateKeepalived(parseKeepalivedFile(path.join(FIX, file)));
  return { ...r, cfg: parseConfig(r.yaml, file), raw: YAML.parse(r.yaml) };
}

describe('keepalived.conf parser', () => {
  it('reads comments starting with # or !, quoted arguments and braces on the next line', () => {
    const t = parseKeepalivedText(
      [
        '! header',
        'vrrp_script chk {  # trailing',
        '  script "/bin/check -x  y" ! more',
        '}',
        'vrrp_instance VI',
        '{',
        '  priority 7',
        '}',
      ].join('\n'),
    );
    assert.deepEqual(
      t.map((s) => s.keyword),
      ['vrrp_script', 'vrrp_instance'],
    );
    assert.deepEqual(t[0]!.children![0]!.args, ['/bin/check -x  y']);
    assert.equal(t[1]!.children![0]!.keyword, 'priority');
    assert.equal(t[1]!.children![0]!.line, 7);
  });

  it('reads a block written on one line', () => {
    const t = parseKeepalivedText('vrrp_instance V { unicast_peer { 10.0.0.2 } }');
    assert.equal(t[0]!.children![0]!.keyword, 'unicast_peer');
    assert.equal(t[0]!.children![0]!.children![0]!.keyword, '10.0.0.2');
  });

  it('expands $NAME parameters', () => {
    const t = parseKeepalivedText('$PRIO=150\nvrrp_instance V {\n priority $PRIO\n}');
    assert.deepEqual(t[0]!.children![0]!.args, ['150']);
  });

  it('reads includes relative to the including file, in sorted order, with the file and line of each statement', () => {
    const t = parseKeepalivedFile(path.join(FIX, 'split/keepalived.conf'));
    assert.deepEqual(
      t.map((s) => `${s.keyword} ${s.args[0] ?? ''}`.trim()),
      [
        'global_defs',
        'vrrp_script chk_mysqlchk',
        'vrrp_instance VI_DB',
        'vrrp_instance VI_DB6',
        'virtual_server_group MYSQL_RO',
        'virtual_server group',
        'virtual_server fd77::100',
      ],
    );
    assert.match(t[1]!.file, /conf\.d\/10-vrrp\.conf$/);
  });

  it('reads @ID lines only for that config id and @^ID lines for every other, as keepalived -i ID does', () => {
    const text = 'vrrp_instance V {\n@high priority 170\n@low priority 85\n@^high advert_int 2\n}';
    const prio = (id: string) =>
      parseKeepalivedText(text, 'c.conf', { configId: id })[0]!.children!.map((c) => `${c.keyword} ${c.args[0]}`);
    assert.deepEqual(prio('high'), ['priority 170']);
    assert.deepEqual(prio('low'), ['priority 85', 'advert_int 2']);
    const warnings: string[] = [];
    parseKeepalivedText(text, 'c.conf', { warnings });
    assert.match(
      warnings.join('\n'),
      /conditional lines \(@ID\): read as the keepalived of this host .* give --config-id ID/,
    );
  });

  it('refuses an unclosed block and an include that matches nothing, naming the file and line', () => {
    assert.throws(
      () => parseKeepalivedText('vrrp_instance V {\n priority 1\n', 'a.conf'),
      /a\.conf:1: "\{" is never closed/,
    );
    const f = path.join(tmp, 'inc.conf');
    fs.writeFileSync(f, 'global_defs {\n}\ninclude nothing/*.conf\n');
    assert.throws(() => parseKeepalivedFile(f), /inc\.conf:3: include nothing\/\*\.conf: no file matches/);
  });
});

describe('keepalived.conf translation', () => {
  it('translates an LVS-DR MySQL guide config: check mysql, weights, persistence as sh, VRRPv2 with auth, track script', () => {
    const { cfg, raw } = imported('lvs-dr-mysql.conf');
    const s = cfg.services[0]!;
    assert.equal(s.vip, '10.77.0.100');
    assert.equal(s.check, 'mysql');
    assert.equal(s.scheduler, 'sh');
    assert.deepEqual(
      s.backends.map((b) => [b.address, b.weight]),
      [
        ['10.77.0.11', 3],
        ['10.77.0.12', 1],
      ],
    );
    assert.equal(cfg.health.interval, 2000);
    const v = cfg.vrrp[0]!;
    assert.deepEqual(
      [v.name, v.vrid, v.priority, v.version, v.advert_interval, v.auth?.password],
      ['VI_1', 51, 150, 2, 1000, 'mysqlha1'],
    );
    assert.deepEqual(v.track.scripts[0], {
      command: '/usr/bin/killall -0 mysqld',
      interval: 2000,
      weight: -20,
      rise: 1,
      fall: 2,
    });
    assert.equal(raw.monitor.user, 'monitor');
  });

  it('runs notify_master / notify_backup through one notify hook that picks the script by state', async () => {
    const out = path.join(tmp, 'notify.out');
    const conf = path.join(tmp, 'n.conf');
    fs.writeFileSync(
      conf,
      `vrrp_instance VI_9 {\n interface eth0\n virtual_router_id 9\n virtual_ipaddress {\n 10.9.9.9\n }\n notify_master "sh -c 'echo master >> ${out}'"\n notify_backup "sh -c 'echo backup >> ${out}'"\n}\n`,
    );
    const cfg = parseConfig(translateKeepalived(parseKeepalivedFile(conf)).yaml, 'n');
    const cmd = cfg.vrrp[0]!.notify!;
    for (const st of ['MASTER', 'BACKUP', 'FAULT'])
      assert.equal((await runCommand(cmd, ['VI_9', st, '100'], 5000)).ok, true);
    assert.equal(fs.readFileSync(out, 'utf8'), 'master\nbackup\n');
  });

  it("passes a plain notify script keepalived's arguments: INSTANCE, name, state, priority", async () => {
    const { cfg } = imported('split/keepalived.conf');
    assert.equal(cfg.vrrp[0]!.notify, '/usr/local/bin/keepalived-notify.sh INSTANCE');
  });

  it('translates a split config: group ranges become one service per VIP, MISC_CHECK keeps its script with the address as {address}, VRRPv3 unicast', () => {
    const { cfg, raw, unsupported } = imported('split/keepalived.conf');
    assert.deepEqual(
      cfg.services.map((s) => `${s.vip}:${s.port}/${s.check}/${s.scheduler}`),
      ['10.77.0.101:3306/script/lc', '10.77.0.102:3306/script/lc', 'fd77::100:3306/mysql/sh'],
    );
    assert.deepEqual(cfg.services[0]!.checkScript, {
      command: '/usr/local/bin/mysqlchk.sh -u haproxy_check -h {address}',
      timeout: 5000,
      user: 'keepalived_script',
      dynamic: false,
    });
    assert.equal(raw.monitor.user, 'monitor');
    const [v4, v6] = cfg.vrrp;
    assert.deepEqual(
      [v4!.version, v4!.advert_interval, v4!.preempt, v4!.unicast_src, v4!.unicast_peers],
      [3, 100, false, '10.77.0.1', ['10.77.0.2']],
    );
    assert.deepEqual(v4!.track.interfaces, [{ name: 'eth1', weight: -30 }]);
    assert.equal(v4!.track.scripts[0]!.weight, -50, 'the track_script weight overrides the vrrp_script one');
    assert.deepEqual([v6!.family, v6!.preempt_delay, v6!.garp.repeat, v6!.garp.refresh], [6, 30_000, 3, 60_000]);
    assert.ok(
      unsupported.some((u) => /20-services\.conf:10: sorry_server/.test(u)),
      unsupported.join('\n'),
    );
  });

  it('turns lb_kind TUN into forwarding: tunnel, with the unicast_src_ip as the outer source', () => {
    const { cfg } = imported('split/keepalived.conf');
    assert.deepEqual(
      cfg.services.map((s) => s.forwarding),
      ['tunnel', 'tunnel', 'dr'],
    );
    assert.equal(cfg.tunnel.sourceV4, '10.77.0.1');
  });

  it('keeps DR for lb_kind TUN when no director address is known, and says to pass --tunnel-source', () => {
    const conf = path.join(tmp, 'tun.conf');
    fs.writeFileSync(conf, 'virtual_server 10.5.0.1 3306 {\n lb_kind TUN\n real_server 10.6.0.2 3306 {\n }\n}\n');
    const r = translateKeepalived(parseKeepalivedFile(conf));
    assert.equal(parseConfig(r.yaml, 'tun').services[0]!.forwarding, 'dr');
    assert.ok(
      r.unsupported.some((u) => /tun\.conf:2: lb_kind TUN: .*rerun with --tunnel-source ADDR/.test(u)),
      r.unsupported.join('\n'),
    );
    const withSrc = translateKeepalived(parseKeepalivedFile(conf), { tunnelSource: ['10.5.0.9'] });
    const c = parseConfig(withSrc.yaml, 'tun');
    assert.deepEqual([c.services[0]!.forwarding, c.tunnel.sourceV4], ['tunnel', '10.5.0.9']);
  });

  it('lists what has no equivalent with file and line: mail, vrrp_strict, a one-member sync group, HTTP/SSL checks', () => {
    const { unsupported, cfg } = imported('docs-sample.conf');
    for (const re of [
      /:4: notification_email/,
      /:13: vrrp_strict/,
      /:18: vrrp_sync_group VG1: fewer than two members/,
      /:51: HTTP_GET/,
      /:70: SSL_GET/,
      /:39: smtp_alert/,
      /:58: delay_before_retry 3: no separate retry delay/,
    ]) {
      assert.ok(
        unsupported.some((u) => re.test(u)),
        `${re} missing from:\n${unsupported.join('\n')}`,
      );
    }
    assert.equal(cfg.services[1]!.ring, 'ipvs-mh', 'lb_algo mh keeps the IPVS mh table');
    assert.equal(cfg.services[0]!.forwarding, 'nat', 'lb_kind NAT is translated');
  });

  it('puts a keepalived comment on every line translated by judgement', () => {
    const r = imported('lvs-dr-mysql.conf');
    const marked = r.yaml.split('\n').filter((l) => l.includes('# keepalived:'));
    assert.equal(marked.length, r.judgements);
    for (const re of [
      /^\s+scheduler: sh\s+# keepalived: lb_algo wrr with persistence_timeout/m,
      /^\s+check: mysql\s+# keepalived: TCP_CHECK on port 3306/m,
      /^\s+timeout: 2s\s+# keepalived: connect_timeout 3, capped/m,
    ]) {
      assert.match(r.yaml, re);
    }
  });

  it('writes durations with units only', () => {
    for (const f of ['lvs-dr-mysql.conf', 'split/keepalived.conf', 'docs-sample.conf']) {
      const bad = imported(f)
        .yaml.split('\n')
        .filter((l) => /(interval|timeout|refresh|delay):\s*\d+\s*(#|$|,|\})/.test(l));
      assert.deepEqual(bad, [], f);
    }
  });
});

describe('xdirector import-keepalived (command)', () => {
  it('writes a config check-config accepts, lists the unsupported on stderr and exits 0', () => {
    const out = path.join(tmp, 'docs.yaml');
    const r = spawnSync(process.execPath, [BIN, 'import-keepalived', path.join(FIX, 'docs-sample.conf'), '-o', out], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /11 statement\(s\) have no xdirector equivalent/);
    assert.match(
      execFileSync(process.execPath, [BIN, 'check-config', '-c', out], { encoding: 'utf8' }),
      /OK \(instance lvs_devel, 2 service\(s\)\)/,
    );
  });

  it('exits 3 with --strict when something has no equivalent, writing nothing but the list; 0 when everything translates', async () => {
    const out = path.join(tmp, 'strict.yaml');
    const strict = await importCmd(['--strict', path.join(FIX, 'docs-sample.conf'), '-o', out]);
    assert.equal(strict.status, 3);
    assert.equal(strict.stdout, '');
    assert.equal(fs.existsSync(out), false, '--strict wrote the output file');
    assert.match(
      strict.stderr,
      /docs-sample\.conf:18: vrrp_sync_group VG1[^]*--strict: 11 statement\(s\) have no equivalent \(listed above\): nothing was written/,
    );
    const clean = path.join(tmp, 'clean.conf');
    fs.writeFileSync(
      clean,
      'vrrp_instance V {\n interface eth0\n virtual_router_id 7\n virtual_ipaddress {\n 10.1.1.1/32\n }\n}\nvirtual_server 10.1.1.1 3306 {\n lb_algo rr\n lb_kind DR\n real_server 10.1.1.2 3306 {\n }\n}\n',
    );
    const ok = await importCmd(['--strict', clean]);
    assert.equal(ok.status, 0, ok.stderr);
  });

  it('leaves out a real server on another port with the reason, honours -o and prints the list (the config loads)', async () => {
    const conf = path.join(tmp, 'ports.conf');
    fs.writeFileSync(
      conf,
      'virtual_server 10.1.1.1 3306 {\n lb_kind DR\n real_server 10.1.1.2 3306 {\n }\n real_server 10.1.1.3 3307 {\n  TCP_CHECK {\n   connect_port 3307\n  }\n }\n}\n',
    );
    const out = path.join(tmp, 'ports.yaml');
    const r = await importCmd([conf, '-o', out]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(
      r.stderr,
      /ports\.conf:5: real_server 10\.1\.1\.3 3307: real server port 3307 differs from the service port 3306: DR and tunnel forwarding keep the destination port/,
    );
    const yaml = fs.readFileSync(out, 'utf8');
    assert.match(yaml, /^\s+# Left out: real server port 3307[^\n]*\n\s+# - address: "10\.1\.1\.3"/m);
    assert.deepEqual(
      parseConfig(yaml, 'ports').services[0]!.backends.map((b) => b.address),
      ['10.1.1.2'],
    );
  });

  it('warns about a stray "}" as keepalived does and reads on', async () => {
    const conf = path.join(tmp, 'stray.conf');
    fs.writeFileSync(conf, 'virtual_server 10.1.1.1 3306 {\n lb_kind DR\n real_server 10.1.1.2 3306 {\n }\n}\n}\n');
    const r = await importCmd([conf]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /warning: .*stray\.conf:6: "}" closes no block: ignored/);
    assert.match(r.stdout, /vip: "10\.1\.1\.1"/);
  });

  it('refuses a config with no service it can translate (fwmark only): exit 4, the list, nothing written', async () => {
    const conf = path.join(tmp, 'fwmark.conf');
    fs.writeFileSync(conf, 'virtual_server fwmark 1 {\n lb_kind DR\n real_server 10.1.1.2 3306 {\n }\n}\n');
    const out = path.join(tmp, 'fwmark.yaml');
    const r = await importCmd([conf, '-o', out]);
    assert.equal(r.status, 4, r.stderr);
    assert.match(
      r.stderr,
      /fwmark\.conf:1: virtual_server fwmark 1: firewall-mark services have no equivalent[^]*no virtual_server of .* could be translated/,
    );
    assert.equal(fs.existsSync(out), false);
  });

  it('carries a replica-lag MISC_CHECK over as check: script with misc_dynamic, misc_timeout and script_user, and names the real check port', () => {
    const conf = path.join(tmp, 'lag.conf');
    fs.writeFileSync(
      conf,
      [
        'global_defs {\n script_user xdcheck\n enable_script_security\n}',
        'virtual_server 10.1.1.1 3306 {\n delay_loop 10\n lb_kind DR\n real_server 10.1.1.2 3306 {\n  MISC_CHECK {\n   misc_path "/usr/local/bin/check_slave.pl 10.1.1.2 3306 30"\n   misc_timeout 8\n   misc_dynamic\n   warmup 5\n  }\n }',
        ' real_server 10.1.1.3 3306 {\n  MISC_CHECK {\n   misc_path "/usr/local/bin/check_slave.pl 10.1.1.3 3306 30"\n   misc_timeout 8\n   misc_dynamic\n  }\n }\n}',
        'virtual_server 10.1.1.1 22 {\n lb_kind DR\n real_server 10.1.1.2 22 {\n  TCP_CHECK {\n   connect_timeout 3\n   nb_get_retry 2\n   delay_before_retry 2\n  }\n }\n}',
      ].join('\n'),
    );
    const r = translateKeepalived(parseKeepalivedFile(conf));
    const cfg = parseConfig(r.yaml, 'lag');
    assert.deepEqual(cfg.services[0]!.checkScript, {
      command: '/usr/local/bin/check_slave.pl {address} {port} 30',
      timeout: 8000,
      user: 'xdcheck',
      dynamic: true,
    });
    assert.equal(cfg.services[0]!.pool, 'static');
    assert.equal(cfg.scriptUser, 'xdcheck');
    assert.deepEqual([cfg.services[1]!.check, cfg.health.timeout, cfg.health.fall], ['tcp', 3000, 3]);
    assert.doesNotMatch(r.yaml, /TCP_CHECK on port 3306/);
    assert.ok(
      r.unsupported.some((u) => /delay_before_retry 2: no separate retry delay/.test(u)),
      r.unsupported.join('\n'),
    );
    assert.ok(
      r.unsupported.some((u) => /lag\.conf:\d+: warmup 5: MISC_CHECK warmup has no equivalent/.test(u)),
      r.unsupported.join('\n'),
    );
  });

  it('exits 2 on a usage error', async () => {
    const r = await importCmd([]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /needs one keepalived\.conf file/);
  });
});

describe('import-keepalived: LVS-NAT and sync groups', () => {
  it('translates lb_kind NAT with real servers on another port, and the sync group of VIP and gateway into sync_group on both instances', () => {
    const { cfg, raw, unsupported, yaml } = imported('lvs-nat.conf');
    const s = cfg.services[0]!;
    assert.equal(s.forwarding, 'nat');
    assert.equal(s.port, 3307);
    assert.deepEqual(
      s.backends.map((b) => [b.address, b.port, b.weight]),
      [
        ['10.20.0.11', 3306, 2],
        ['10.20.0.12', 3306, 1],
      ],
    );
    assert.equal(s.check, 'mysql', 'real servers on 3306 behind a translated port');
    assert.deepEqual(cfg.nat, { interface: 'eth1', twoArmed: true });
    assert.deepEqual(
      cfg.vrrp.map((v) => [v.name, v.interface, v.vrid, v.sync_group, v.vips.map((x) => x.address)]),
      [
        ['VI_1', 'eth0', 51, 'VG1', ['192.168.10.100']],
        ['GATEWAY', 'eth1', 52, 'VG1', ['10.20.0.1']],
      ],
    );
    assert.deepEqual(raw.vrrp[1].track.interfaces, [{ name: 'eth1', weight: 0 }]);
    assert.match(yaml, /# keepalived: the real servers' side: vrrp_instance GATEWAY of sync group VG1 is on eth1/);
    assert.deepEqual(unsupported, [
      `${path.join(FIX, 'lvs-nat.conf')}:12: notify_master /usr/local/bin/lvs-master.sh: the sync group's own notify_master is not kept (each member's notify and tracking apply, and a member's fault faults the group)`,
    ]);
    assert.doesNotMatch(unsupported.join('\n'), /NAT has no equivalent|differs from the service port/);
  });

  it('a VIP with dev on another interface in one instance is kept on that interface', () => {
    const r = translateKeepalived(
      parseKeepalivedText(
        [
          'vrrp_instance V {',
          ' interface eth0',
          ' virtual_router_id 7',
          ' virtual_ipaddress {',
          '  10.0.0.100/24',
          '  10.20.0.1/24 dev eth1',
          '  10.0.0.101/24 dev eth0',
          ' }',
          '}',
        ].join('\n'),
      ),
    );
    assert.deepEqual(YAML.parse(r.yaml).vrrp[0].vips, ['10.0.0.100/24', '10.20.0.1/24 dev eth1', '10.0.0.101/24']);
    assert.deepEqual(r.unsupported, []);
  });

  it('a sync group member that is no instance, or already in another group, is listed; a group left with one member is none', () => {
    const r = translateKeepalived(
      parseKeepalivedText(
        [
          'vrrp_sync_group G { group { A B } }',
          'vrrp_sync_group H { group { A C } }',
          'vrrp_instance A { interface eth0\n virtual_router_id 1\n virtual_ipaddress { 10.0.0.1/24 } }',
          'vrrp_instance B { interface eth1\n virtual_router_id 2\n virtual_ipaddress { 10.1.0.1/24 } }',
        ].join('\n'),
        'mix.conf',
      ),
    );
    assert.deepEqual(
      YAML.parse(r.yaml).vrrp.map((v: { sync_group?: string }) => v.sync_group),
      ['G', 'G'],
    );
    assert.match(r.unsupported.join('\n'), /mix\.conf:2: vrrp_sync_group H: member C is no vrrp_instance/);
    assert.match(r.unsupported.join('\n'), /mix\.conf:2: vrrp_sync_group H: A is already in sync group G/);
    assert.match(r.unsupported.join('\n'), /mix\.conf:2: vrrp_sync_group H: fewer than two members/);
  });
});

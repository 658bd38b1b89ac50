// The IPVS client against this host's kernel, which has no IPVS (no loadable modules): the
// real generic netlink family lookup must fail with the clear XD_ERR_IPVS_MISSING error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { IpvsClient, MISSING_FAMILY_MESSAGE, describeErrno } from '../../../src/dataplane/ipvs/client';
import { IpvsDataplane } from '../../../src/dataplane/ipvs/dataplane';

const hostHasIpvs = existsSync('/proc/net/ip_vs');

test(
  'opening IPVS where the kernel has none fails with XD_ERR_IPVS_MISSING, ENOENT and the fix',
  {
    skip:
      hostHasIpvs && 'this kernel has IPVS (/proc/net/ip_vs exists): the missing-family path cannot be exercised here',
  },
  async () => {
    await assert.rejects(IpvsClient.open(), (err: any) => {
      assert.equal(err.code, 'XD_ERR_IPVS_MISSING');
      assert.equal(
        err.message,
        'IPVS: generic netlink family IPVS not found — load the ip_vs module (modprobe ip_vs ip_vs_mh)',
      );
      assert.equal(err.message, MISSING_FAMILY_MESSAGE);
      assert.equal(err.detail.errno, 2);
      assert.equal(err.detail.code, 'ENOENT');
      assert.equal(err.cause?.errno, 2);
      return true;
    });
  },
);

test(
  'the IPVS dataplane passes the missing-family error through unchanged',
  { skip: hostHasIpvs && 'this kernel has IPVS (/proc/net/ip_vs exists)' },
  async () => {
    await assert.rejects(IpvsDataplane.open(), { code: 'XD_ERR_IPVS_MISSING', message: MISSING_FAMILY_MESSAGE });
  },
);

test('kernel errnos are described with glibc strerror text like ipvsadm prints', () => {
  assert.deepEqual(describeErrno(-17), { code: 'EEXIST', text: 'File exists' });
  assert.deepEqual(describeErrno(3), { code: 'ESRCH', text: 'No such process' });
  assert.deepEqual(describeErrno(34), { code: 'ERANGE', text: 'Numerical result out of range' });
});

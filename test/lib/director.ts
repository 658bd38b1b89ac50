// The product's XDP object loaded small for BPF_PROG_TEST_RUN fixtures: the one place the
// fixtures' map sizes are written, so each test file says only how big it wants the instance.
import * as path from 'node:path';
import { BpfObject, cpuSizedMaxEntries, flowTableEntries, MAPS } from '../../src/bpf';
import type { GlobalValue } from '../../src/bpf';

/** dist/bpf/xdirector.bpf.o, from dist/test/<folder>/. */
export const XD_OBJECT = path.resolve(__dirname, '../../bpf/xdirector.bpf.o');

export interface SmallDirector {
  services: number;
  backends: number;
  /** Slots per ring generation (the ring map holds services * 2 * ringMax). */
  ringMax: number;
  /** Flow table entries per family. */
  flows: number;
  /** Embryonic table entries per family (default: flows). */
  embryonic?: number;
  /** Takeover and probation table entries per family (default: the object's own size). */
  takeover?: number;
  /** Size the tunnel map to the backends. */
  tunnels?: boolean;
  /** Size the flow caches for every possible CPU (cpuSizedMaxEntries), as the daemon does. */
  perCpuCaches?: boolean;
  /** Load-time globals besides ring_max. */
  globals?: Record<string, GlobalValue>;
}

/**
 * The flow tables' hash seed every fixture loads with (bpf/flow.h flow_seed; the daemon draws a
 * random one per instance): not 0, so a test that reads a table through src/bpf/flowtable.ts with
 * it proves the program and TypeScript hash with the seed alike.
 */
export const TEST_FLOW_SEED = 0x9e3779b9;

export function loadSmallDirector(o: SmallDirector): Promise<BpfObject> {
  const emb = o.embryonic ?? o.flows;
  return BpfObject.load(XD_OBJECT, {
    maxEntries: {
      ...(o.perCpuCaches ? cpuSizedMaxEntries() : {}),
      [MAPS.svc.name]: o.services,
      [MAPS.svcst.name]: o.services,
      [MAPS.rr.name]: o.services,
      [MAPS.be.name]: o.backends,
      [MAPS.best.name]: o.backends,
      ...(o.tunnels ? { [MAPS.tun.name]: o.backends } : {}),
      [MAPS.ring.name]: o.services * 2 * o.ringMax,
      [MAPS.flow4.name]: flowTableEntries(o.flows),
      [MAPS.flow6.name]: flowTableEntries(o.flows),
      // NAT's per-backend counters, and its reverse tables sized like the flow tables.
      [MAPS.nbst.name]: o.backends,
      [MAPS.nrev4.name]: o.flows,
      [MAPS.nrev6.name]: o.flows,
      [MAPS.emb4.name]: emb,
      [MAPS.emb6.name]: emb,
      ...(o.takeover === undefined
        ? {}
        : {
            [MAPS.tko4.name]: o.takeover,
            [MAPS.tko6.name]: o.takeover,
            [MAPS.prb4.name]: o.takeover,
            [MAPS.prb6.name]: o.takeover,
          }),
    },
    globals: { ring_max: o.ringMax, flow_seed: TEST_FLOW_SEED, ...o.globals },
  });
}

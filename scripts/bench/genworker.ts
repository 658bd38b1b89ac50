// The packet generator process. It sends with BPF_PROG_RUN live frames, or,
// where the kernel refuses those, on an AF_PACKET TX ring ("kind", chosen by
// the parent: director.ts pickGenerator()). Both transmit out of an ifindex of
// the caller's network namespace (live frames: ctx.ingress_ifindex; the ring:
// the socket's namespace), so the generator must run inside the client namespace: the bench starts this file
// with `nsenter --net=/run/netns/<client> node genworker.js` (nsenter keeps
// the mount namespace, hence bpffs and the addon's files) and talks to it in
// JSON lines over stdin/stdout:
//   → {"op":"init","kind":"live-frames"|"af-packet","ifname":"eth0","frame":"<hex>","sportOff":34,"csumOff":50,"flows":4096,"basePort":10000}
//     (optional "ports", "saddrOff", "ipCsumOff": more flows than ports, see GeneratorOptions;
//     "firstFlow" (af-packet): the flow this process sends first, so that several processes
//     splitting a run between them cover every flow; "flood" (af-packet): a spoofed-SYN flood with
//     established flows in it, its "ack" in hex, see FloodSpec)
//   ← {"ok":true,"ifindex":2}
//   → {"op":"template","frame":"<hex>"}            (same length and offsets)
//   ← {"ok":true}
//   → {"op":"run","packets":1000000,"batch":64}
//   ← {"ok":true,"sent":1000000,"seconds":0.61,"cpuSeconds":0.6,"aborted":0}
// cpuSeconds is this process's CPU time during the run: the live-frames syscall
// (or the ring's send calls) and the softirq processing it triggers inline (veth NAPI of the peers, bridge,
// director, receivers all run in this context on one CPU; with tick-based
// accounting and no IRQ time accounting that time is charged to this task).
// Errors answer {"ok":false,"error":"..."}; the process exits when stdin closes.
import * as readline from 'node:readline';
import { getNative } from '../../src/bpf/native';
import {
  openGenerator,
  openPacketGenerator,
  type FloodSpec,
  type Generator,
  type GeneratorKind,
  type GeneratorOptions,
} from './director';

/** The generator's options as JSON: the frame in hex, the interface by name (ifindex is this namespace's). */
type InitMsg = { op: 'init'; kind: GeneratorKind; ifname: string; frame: string } & Omit<
  GeneratorOptions,
  'frame' | 'ifindex' | 'flood'
> & { flood?: Omit<FloodSpec, 'ack'> & { ack: string } };
interface TemplateMsg {
  op: 'template';
  frame: string;
}
interface RunMsg {
  op: 'run';
  packets: number;
  batch: number;
}
type Msg = InitMsg | TemplateMsg | RunMsg;

/** Frames per call (live frames: repeat per syscall): keeps each call well under a second so the worker stays responsive. */
const CHUNK = 1_000_000;

async function main(): Promise<void> {
  let gen: Generator | undefined;
  const rl = readline.createInterface({ input: process.stdin });
  const reply = (o: Record<string, unknown>): void => {
    process.stdout.write(JSON.stringify(o) + '\n');
  };
  for await (const line of rl) {
    if (!line.trim()) continue;
    try {
      const m = JSON.parse(line) as Msg;
      if (m.op === 'init') {
        const ifindex = getNative().ifNameToIndex(m.ifname);
        const { op: _op, kind, ifname: _ifname, frame, flood, ...opts } = m;
        const go = {
          ...opts,
          frame: Buffer.from(frame, 'hex'),
          ifindex,
          ...(flood ? { flood: { ...flood, ack: Buffer.from(flood.ack, 'hex') } } : {}),
        };
        if (go.flood && kind !== 'af-packet') throw new Error('a flood stream needs the af-packet generator');
        if (kind === 'live-frames') gen = await openGenerator(go);
        else if (kind === 'af-packet') gen = openPacketGenerator(go);
        else throw new Error(`unknown generator kind ${JSON.stringify(kind)}`);
        reply({ ok: true, ifindex });
      } else if (m.op === 'template') {
        if (!gen) throw new Error('template before init');
        gen.setTemplate(Buffer.from(m.frame, 'hex'));
        reply({ ok: true });
      } else if (m.op === 'run') {
        if (!gen) throw new Error('run before init');
        const abortedBefore = gen.aborted();
        let sent = 0;
        const cpu0 = process.cpuUsage();
        const t0 = process.hrtime.bigint();
        while (sent < m.packets) {
          const n = Math.min(CHUNK, m.packets - sent);
          await gen.run(n, m.batch);
          sent += n;
        }
        const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
        const cpu = process.cpuUsage(cpu0);
        reply({
          ok: true,
          sent,
          seconds,
          cpuSeconds: (cpu.user + cpu.system) / 1e6,
          aborted: gen.aborted() - abortedBefore,
        });
      } else {
        throw new Error(`unknown op ${JSON.stringify((m as { op: unknown }).op)}`);
      }
    } catch (err) {
      reply({ ok: false, error: err instanceof Error ? err.message : String(err) });
    }
  }
  gen?.close();
}

void main();

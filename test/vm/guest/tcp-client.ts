// Guest side: a TCP client that connects from chosen source ports and records which real server
// answered (each server writes its id and closes). Long-lived to pay Node's start-up (~2 s under
// TCG) once: reads one JSON request per stdin line, answers one JSON line on stdout.
//   request:  {"seq":1,"host":"10.77.0.100","port":3306,"src":"10.77.0.10","ports":[20000,...],"concurrency":16}
//   response: {"seq":1,"results":[{"srcPort":20000,"server":"rs2"},{"srcPort":20001,"error":"ECONNREFUSED"}]}
import { connect } from 'node:net';
import { createInterface } from 'node:readline';

interface Req {
  seq: number;
  host: string;
  port: number;
  src: string;
  ports: number[];
  concurrency?: number;
  timeoutMs?: number;
}
interface Res {
  srcPort: number;
  server?: string;
  error?: string;
  ms?: number;
}

function once(host: string, port: number, src: string, srcPort: number, timeoutMs: number): Promise<Res> {
  return new Promise((resolve) => {
    let data = '';
    let done = false;
    const s = connect({ host, port, localAddress: src, localPort: srcPort });
    const t = Date.now();
    const finish = (r: Res): void => {
      if (done) return;
      r.ms = Date.now() - t;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve(r);
    };
    const timer = setTimeout(
      () => finish({ srcPort, error: connected ? 'ETIMEDOUT (connected, no reply)' : 'ETIMEDOUT (connect)' }),
      timeoutMs,
    );
    let connected = false;
    s.on('connect', () => (connected = true));
    s.setEncoding('utf8');
    s.on('data', (d: string) => (data += d));
    s.on('end', () => finish(data.trim() ? { srcPort, server: data.trim() } : { srcPort, error: 'EMPTY' }));
    s.on('error', (e: NodeJS.ErrnoException) => finish({ srcPort, error: e.code ?? e.message }));
  });
}

async function run(r: Req): Promise<Res[]> {
  const out: Res[] = new Array(r.ports.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < r.ports.length) {
      const i = next++;
      out[i] = await once(r.host, r.port, r.src, r.ports[i]!, r.timeoutMs ?? 4000);
    }
  };
  await Promise.all(Array.from({ length: Math.min(r.concurrency ?? 16, r.ports.length) }, worker));
  return out;
}

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const r = JSON.parse(line) as Req;
  void run(r).then((results) => process.stdout.write(`${JSON.stringify({ seq: r.seq, results })}\n`));
});
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);

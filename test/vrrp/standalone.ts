// Standalone VRRP runner for the VRRP tests (test/vrrp/lab.ts): `node dist/test/vrrp/standalone.js <config.yaml>`.
// Reads a YAML file with just `interface:` and `vrrp:` and runs those instances
// with pino logging (stderr), as `xdirector run` will inside the daemon.
// SIGTERM / SIGINT: graceful stop (priority 0, VIPs released), exit 0.
// SIGUSR1: one JSON line {"status":[...]} on stdout.

import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { resolveVrrpInterfaces, vrrpSchema } from '../../src/config';
import { XdError, wrap } from '../../src/errors';
import { createLogger } from '../../src/log';
import { VrrpInstance } from '../../src/vrrp/instance';
import { wireSyncGroups } from '../../src/vrrp/sync';

const fileSchema = z.strictObject({
  interface: z.string().min(1).max(15).optional(),
  vrrp: vrrpSchema,
});

export function loadStandaloneConfig(path: string) {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw wrap('XD_ERR_CONFIG_READ', `read ${path}`, err);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw wrap('XD_ERR_CONFIG_PARSE', `parse ${path}`, err);
  }
  const r = fileSchema.safeParse(doc);
  if (!r.success) {
    const lines = r.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`);
    throw new XdError('XD_ERR_CONFIG_INVALID', `${path}: ${lines.join('; ')}`, { detail: { issues: r.error.issues } });
  }
  try {
    return resolveVrrpInterfaces(r.data.vrrp, r.data.interface);
  } catch (err) {
    throw wrap('XD_ERR_CONFIG_INVALID', path, err);
  }
}

async function main(argv: string[]): Promise<number> {
  const path = argv[0];
  if (!path || argv.length > 1) {
    process.stderr.write('usage: standalone <config.yaml>   (a file with interface: and vrrp:)\n');
    return 2;
  }
  const log = createLogger();
  let instances: VrrpInstance[] = [];
  let stopping = false;
  let done: (code: number) => void = () => {};
  const finished = new Promise<number>((resolve) => (done = resolve));
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping vrrp instances');
    await Promise.all(instances.map((i) => i.stop().catch((err) => log.error({ err }, 'stop failed'))));
    done(0);
  };
  // Handlers first: a signal during startup must not kill the process with default actions.
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGUSR1', () => {
    process.stdout.write(JSON.stringify({ status: instances.map((i) => i.status()) }) + '\n');
  });
  try {
    instances = loadStandaloneConfig(path).map((c) => new VrrpInstance(c, { log }));
    wireSyncGroups(instances);
    for (const i of instances) {
      if (stopping) break;
      await i.start();
    }
  } catch (err) {
    log.error({ err }, err instanceof Error ? err.message : String(err));
    await Promise.all(instances.map((i) => i.stop().catch(() => undefined)));
    return 1;
  }
  if (!stopping) log.info({ instances: instances.length }, 'all vrrp instances started');
  return finished;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
      process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
      process.exit(1);
    },
  );
}

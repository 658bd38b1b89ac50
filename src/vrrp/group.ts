// The daemon's VRRP instances as one group: started together (sync_group members wired first),
// told together what they track of the director (is the XDP program attached, can this director
// serve, has each service a usable backend), stopped or resigned together. The instances and
// their sync groups are loaded only when the config has VRRP.
import type { Logger } from 'pino';
import type { ResolvedVrrpInstanceConfig } from '../config';
import type { DesiredService } from '../state/types';
import { servableBackend } from '../state/backend';
import type { VrrpInstance, VrrpInstanceStatus } from './instance';

/** What the instances track of the director (keepalived's track_script, done in-process). */
export interface DirectorTracking {
  /** The XDP program is the one attached (always true for IPVS). */
  xdpAttached: boolean;
  /** This director can serve (daemon/liveness.ts); false fails the `director` tracker. */
  serving: boolean;
  /** The applied services: a pool with no usable backend fails its tracker. */
  services: readonly Pick<DesiredService, 'name' | 'backends'>[];
}

export class VrrpGroup {
  private readonly instances: VrrpInstance[] = [];

  constructor(private readonly log: Logger) {}

  get size(): number {
    return this.instances.length;
  }

  /** Starts an instance per config (each with its interface resolved), each told what it tracks before it starts. */
  async start(configs: readonly ResolvedVrrpInstanceConfig[], tracking: () => DirectorTracking): Promise<void> {
    if (configs.length === 0) return;
    const { VrrpInstance } = await import('./instance');
    const { wireSyncGroups } = await import('./sync');
    const instances = configs.map((c) => new VrrpInstance(c, { log: this.log }));
    wireSyncGroups(instances); // sync_group members fail over as one (before any starts)
    for (const inst of instances) {
      // Kept before it starts: a stop after a failed start stops the ones already running.
      this.instances.push(inst);
      track(inst, tracking());
      await inst.start();
    }
  }

  /** Tells every instance what it tracks now (on each reconcile and every tick). */
  track(tracking: DirectorTracking): void {
    for (const inst of this.instances) track(inst, tracking);
  }

  status(): VrrpInstanceStatus[] {
    return this.instances.map((v) => v.status());
  }

  /** After a fatal error: every instance sends priority 0 (if Master) and removes its VIPs, all at once. */
  async resign(): Promise<void> {
    await Promise.all(
      this.instances.map((v) => v.stop().catch((err: unknown) => this.log.error({ err }, 'vrrp resign failed'))),
    );
  }

  /** One after another; a failure is logged and the others still stop. */
  async stop(): Promise<void> {
    for (const v of this.instances) await v.stop().catch((err: unknown) => this.log.error({ err }, 'vrrp stop failed'));
  }
}

function track(inst: VrrpInstance, t: DirectorTracking): void {
  inst.setXdpAttached(t.xdpAttached);
  inst.setDirectorServing(t.serving);
  for (const s of t.services) inst.setPoolHealthy(s.name, s.backends.some(servableBackend));
}

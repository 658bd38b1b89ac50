// How long the backend states have been steady, for BGP's announce hold-down (director.ts): measured
// on the monotonic clock (src/clock.ts), so a wall-clock step neither releases the hold-down at
// once (forward) nor stretches it by the step (backward).
import { monotonicMs, type Clock } from '../clock';

export class SteadySince {
  private changedAt: number;

  constructor(private readonly now: Clock = monotonicMs) {
    this.changedAt = now();
  }

  /** The backend states changed now. */
  changed(): void {
    this.changedAt = this.now();
  }

  /** Milliseconds since the last change. */
  ms(): number {
    return this.now() - this.changedAt;
  }

  /** undefined once steady for `needMs`; otherwise why announcing waits. */
  holdDown(needMs: number): string | undefined {
    const since = this.ms();
    return since >= needMs
      ? undefined
      : `backend states changed ${(since / 1000).toFixed(1)} s ago: announcing waits until they are steady for ${(needMs / 1000).toFixed(1)} s, so that this ring matches the other directors'`;
  }
}

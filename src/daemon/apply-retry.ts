// A failed apply is retried with capped exponential backoff until the dataplane
// matches the desired state again. Before, a failed apply was logged and then
// nothing happened until some other event (a health change, a drain) asked for a
// reconcile: the dataplane could differ from the desired state for hours, with
// nothing but one log line to say so. While it differs an alert is raised (once,
// with the error), status carries `diverged` and metrics export it; the first
// successful apply clears it.
import type { Logger } from 'pino';

export interface ApplyRetryOptions {
  log: Logger;
  /** Asks for another reconcile (the daemon's coalescing kick). */
  retry: () => void;
  /** First retry after this many ms; doubled on each failure; default 500. */
  minMs?: number;
  /** Cap of the backoff; default 30000. */
  maxMs?: number;
}

export interface ApplyDivergence {
  /** The dataplane differs from the desired state (the last apply failed). */
  diverged: boolean;
  /** When the first failure of this run of failures happened (ISO time). */
  since: string | null;
  /** Failed applies in a row. */
  failures: number;
  /** All failed applies since the start. */
  failuresTotal: number;
  lastError: string | null;
  /** When the next retry is due (ISO time). */
  nextRetryAt: string | null;
}

export class ApplyRetry {
  private since: number | null = null;
  private failures = 0;
  private failuresTotal = 0;
  private lastError: string | null = null;
  private nextAt: number | null = null;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  /** When the divergence began on the monotonic clock (for its length; `since` is shown). */
  private sinceMono = 0;

  constructor(private readonly o: ApplyRetryOptions) {}

  /** The backoff before retry number `n` (1-based). */
  delay(n: number): number {
    const min = this.o.minMs ?? 500;
    const max = this.o.maxMs ?? 30000;
    return Math.min(max, min * 2 ** Math.min(n - 1, 30));
  }

  failed(err: unknown, reason: string): void {
    this.failures++;
    this.failuresTotal++;
    this.lastError = err instanceof Error ? err.message : String(err);
    const first = this.since === null;
    if (first) {
      this.since = Date.now();
      this.sinceMono = performance.now();
    }
    if (this.stopped) return;
    const wait = this.delay(this.failures);
    this.nextAt = Date.now() + wait;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.nextAt = null;
      this.o.retry();
    }, wait);
    this.timer.unref?.();
    if (first)
      this.o.log.warn(
        { err, alert: 'dataplane-diverged', reason },
        `ALERT the dataplane differs from the desired state: apply (${reason}) failed: ${this.lastError}; retrying in ${wait} ms, backing off to ${this.o.maxMs ?? 30000} ms`,
      );
    else
      this.o.log.error(
        { err, reason, failures: this.failures },
        `apply (${reason}) failed again (${this.failures} in a row): ${this.lastError}; next retry in ${wait} ms`,
      );
  }

  succeeded(): void {
    if (this.since !== null) {
      this.o.log.info(
        { alert: 'dataplane-diverged', failures: this.failures, seconds: (performance.now() - this.sinceMono) / 1000 },
        `alert cleared: the dataplane matches the desired state again after ${this.failures} failed apply(s)`,
      );
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.since = null;
    this.failures = 0;
    this.lastError = null;
    this.nextAt = null;
  }

  status(): ApplyDivergence {
    return {
      diverged: this.since !== null,
      since: this.since === null ? null : new Date(this.since).toISOString(),
      failures: this.failures,
      failuresTotal: this.failuresTotal,
      lastError: this.lastError,
      nextRetryAt: this.nextAt === null ? null : new Date(this.nextAt).toISOString(),
    };
  }

  /** The alert line while diverged (for status alerts). */
  alert(): string | null {
    return this.since === null
      ? null
      : `the dataplane differs from the desired state since ${new Date(this.since).toISOString()}: ${this.failures} failed apply(s), last: ${this.lastError}`;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

// Time for intervals and deadlines: a monotonic clock (CLOCK_MONOTONIC through
// performance.now(), milliseconds since this process started). A wall-clock step (NTP, an
// operator's date -s, a VM resumed) moves Date.now() by any amount, either way; this clock
// only moves forward at the rate time passes, so a backoff, a timeout or a hold-down measured
// with it lasts what it says. Date.now() / new Date() remain right only for timestamps shown
// to people (logs, status "since", ISO times).
export type Clock = () => number;

/** Milliseconds on the monotonic clock (fractional; only differences mean anything). */
export const monotonicMs: Clock = () => performance.now();

// Rise/fall counters (HAProxy semantics): `rise` consecutive successes mark a backend up,
// `fall` consecutive failures mark it down. The very first result decides the initial state
// directly, so a starting director does not wait rise × interval before routing.
// Pure.

export interface RiseFallState {
  /** null: no result yet. */
  up: boolean | null;
  okStreak: number;
  failStreak: number;
}

export function initialRiseFall(): RiseFallState {
  return { up: null, okStreak: 0, failStreak: 0 };
}

/** Feed one result; returns the new state and whether `up` changed. */
export function riseFallStep(
  s: RiseFallState,
  ok: boolean,
  rise: number,
  fall: number,
): { state: RiseFallState; changed: boolean } {
  const okStreak = ok ? s.okStreak + 1 : 0;
  const failStreak = ok ? 0 : s.failStreak + 1;
  let up = s.up;
  if (up === null) up = ok;
  else if (!up && okStreak >= rise) up = true;
  else if (up && failStreak >= fall) up = false;
  return { state: { up, okStreak, failStreak }, changed: up !== s.up };
}

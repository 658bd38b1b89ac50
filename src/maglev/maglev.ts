// Maglev consistent hashing (Eisenbud et al., NSDI'16, §3.4) with Katran's weighted
// variant (MaglevHashV2): in each round every backend adds its weight to a running
// credit and claims its next preferred free slot when the credit reaches the largest
// weight. Equal weights therefore give the classic algorithm; unequal integer weights
// give slot shares proportional to the weights.
//
// Each backend's preference list is the permutation offset, offset+skip, ... (mod M),
// with offset and skip from SipHash-2-4 of its key ("address:port") under two fixed
// keys, and backends take their turns in the order of their keys. So the table is a
// function of the set of (key, weight) only: the same on every run, in every process
// and on every director, whatever order the backends are given in.
// Pure: no I/O.

import { XdError } from '../errors';
import { sipHashWords, sipKeyWords, SipKeyWords } from './siphash';

/** Katran's and the paper's table size: prime, ~100x the backends of a typical service. */
export const DEFAULT_RING_SIZE = 65537;
/** Largest table size accepted: the largest prime below 2^24 (16 Mi slots, 64 MiB per generation). */
export const MAX_RING_SIZE = 16777213;

export interface MaglevBackend {
  /** Value written to the backend's slots: the BPF backend index (>= 1; 0 means "none"). */
  id: number;
  /** Stable identity; its hash places the backend. "address:port" in xdirector. */
  key: string;
  /** Integer >= 0; 0 takes no slot. */
  weight: number;
}

/** Deterministic primality test for the sizes used here (trial division by 6k±1; M < 2^31). */
export function isPrime(n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false;
  if (n < 4) return true;
  if (n % 2 === 0 || n % 3 === 0) return false;
  for (let f = 5; f * f <= n; f += 6) {
    if (n % f === 0 || n % (f + 2) === 0) return false;
  }
  return true;
}

/** Smallest prime >= n. */
export function nextPrime(n: number): number {
  let p = Math.max(2, Math.ceil(n));
  while (!isPrime(p)) p++;
  return p;
}

// Fixed keys: changing them re-places every backend, so they are part of the format.
const OFFSET_KEY: SipKeyWords = sipKeyWords({ k0: 0x78646972_6563746fn, k1: 0x72206f66_66736574n }); // "xdirecto" "r offset"
const SKIP_KEY: SipKeyWords = sipKeyWords({ k0: 0x78646972_6563746fn, k1: 0x72207368_69702121n }); // "xdirecto" "r skip!!"

const utf8 = new TextEncoder();

/** (hi * 2^32 + lo) mod m without leaving exact double arithmetic (m < 2^26). */
function mod64(hi: number, lo: number, m: number): number {
  return ((((hi % m) * (4294967296 % m)) % m) + (lo % m)) % m;
}

/** The permutation parameters of a key for table size `size`: offset in [0, M), skip in [1, M). */
export function maglevPermutation(key: string, size: number): { offset: number; skip: number } {
  const data = utf8.encode(key);
  const [oh, ol] = sipHashWords(data, OFFSET_KEY, 2, 4);
  const [sh, sl] = sipHashWords(data, SKIP_KEY, 2, 4);
  return { offset: mod64(oh, ol, size), skip: size === 1 ? 1 : mod64(sh, sl, size - 1) + 1 };
}

function ringError(msg: string, detail: Record<string, unknown> = {}): XdError {
  return new XdError('XD_ERR_RING', `maglev: ${msg}`, { detail });
}

/** Validate a table size: a prime in [2, MAX_RING_SIZE]. Throws XdError XD_ERR_RING. */
export function checkRingSize(size: number): void {
  if (!Number.isInteger(size) || size < 2 || size > MAX_RING_SIZE) {
    throw ringError(
      `table size must be a prime between 2 and ${MAX_RING_SIZE}, got ${size} (default ${DEFAULT_RING_SIZE})`,
      { size },
    );
  }
  if (!isPrime(size)) {
    throw ringError(
      `table size ${size} is not prime: Maglev needs a prime size so every skip visits every slot; use ${nextPrime(size)}`,
      { size },
    );
  }
}

/**
 * Build the Maglev lookup table: `size` slots, each holding the id of the backend that
 * owns it. Every slot is filled when any weight is > 0; with no positive weight (or no
 * backends) the table is all zeros ("no backend").
 *
 * Throws XdError XD_ERR_RING for a non-prime or out-of-range size, ids that are not
 * unique integers >= 1, duplicate keys, weights that are not integers >= 0, or more
 * weighted backends than slots.
 */
export function buildMaglev(backends: readonly MaglevBackend[], size: number = DEFAULT_RING_SIZE): Uint32Array {
  checkRingSize(size);
  const seenIds = new Set<number>();
  const seenKeys = new Set<string>();
  const active: MaglevBackend[] = [];
  for (const b of backends) {
    if (!Number.isInteger(b.id) || b.id < 1 || b.id > 0xffffffff) {
      throw ringError(
        `backend ${b.key}: id must be an integer from 1 to 4294967295 (0 means "no backend"), got ${b.id}`,
      );
    }
    if (typeof b.key !== 'string' || b.key.length === 0)
      throw ringError(`backend id ${b.id}: key must be a non-empty string`);
    if (!Number.isInteger(b.weight) || b.weight < 0 || b.weight > 0x7fffffff) {
      throw ringError(`backend ${b.key}: weight must be an integer from 0 to 2147483647, got ${b.weight}`);
    }
    if (seenIds.has(b.id)) throw ringError(`backend ${b.key}: id ${b.id} is given to two backends`);
    if (seenKeys.has(b.key)) throw ringError(`backend key ${b.key} appears twice`);
    seenIds.add(b.id);
    seenKeys.add(b.key);
    if (b.weight > 0) active.push(b);
  }
  const table = new Uint32Array(size);
  const n = active.length;
  if (n === 0) return table;
  if (n > size) {
    throw ringError(
      `${n} weighted backends do not fit a table of ${size} slots: use a larger prime size (e.g. ${nextPrime(n * 100)})`,
      { size, backends: n },
    );
  }
  // Canonical turn order: by key (code-unit order), never by input order.
  active.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));

  const next = new Uint32Array(n); // next preferred slot to try (the permutation position)
  const skip = new Uint32Array(n);
  const ids = new Uint32Array(n);
  const weight = new Float64Array(n);
  let maxWeight = 0;
  for (let i = 0; i < n; i++) {
    const b = active[i]!;
    const p = maglevPermutation(b.key, size);
    next[i] = p.offset;
    skip[i] = p.skip;
    ids[i] = b.id;
    weight[i] = b.weight;
    if (b.weight > maxWeight) maxWeight = b.weight;
  }

  // Claim one slot: the backend's next preferred slot that is still free.
  const claim = (i: number): void => {
    let c = next[i]!;
    const st = skip[i]!;
    while (table[c] !== 0) {
      c += st;
      if (c >= size) c -= size;
    }
    table[c] = ids[i]!;
    c += st;
    if (c >= size) c -= size;
    next[i] = c;
  };

  let sumWeight = 0;
  for (let i = 0; i < n; i++) sumWeight += weight[i]!;
  if ((maxWeight * n) / sumWeight <= 4 + Math.log2(n)) {
    // Round by round (cheap when weights are alike: ~M * maxWeight / meanWeight steps). In round r
    // every backend adds its weight to a credit and takes a turn when the credit reaches the
    // largest weight, then pays it back. Equal weights: one turn each per round (classic Maglev).
    const credit = new Float64Array(n);
    let filled = 0;
    for (;;) {
      for (let i = 0; i < n; i++) {
        credit[i] += weight[i]!;
        if (credit[i]! < maxWeight) continue;
        credit[i] -= maxWeight;
        claim(i);
        if (++filled === size) return table;
      }
    }
  }

  // Skewed weights: the same turn sequence without walking every round. Backend i takes its k-th
  // turn in round ceil(k * maxWeight / w_i), and turns happen in (round, key order) order, so a
  // min-heap of (round, i) yields exactly the sequence above in O(M log N) (the round loop would
  // visit every backend in up to ~M rounds: seconds for one heavy backend among many light ones).
  // k * maxWeight = q * w + rem, kept incrementally so nothing overflows.
  const q = new Float64Array(n);
  const rem = new Float64Array(n);
  const qStep = new Float64Array(n);
  const remStep = new Float64Array(n);
  const heapKey = new Float64Array(n); // round * n + i
  let heapLen = 0;
  const push = (key: number): void => {
    let j = heapLen++;
    while (j > 0) {
      const parent = (j - 1) >> 1;
      if (heapKey[parent]! <= key) break;
      heapKey[j] = heapKey[parent]!;
      j = parent;
    }
    heapKey[j] = key;
  };
  const pop = (): number => {
    const top = heapKey[0]!;
    const last = heapKey[--heapLen]!;
    let j = 0;
    for (;;) {
      let child = 2 * j + 1;
      if (child >= heapLen) break;
      if (child + 1 < heapLen && heapKey[child + 1]! < heapKey[child]!) child++;
      if (heapKey[child]! >= last) break;
      heapKey[j] = heapKey[child]!;
      j = child;
    }
    heapKey[j] = last;
    return top;
  };
  for (let i = 0; i < n; i++) {
    qStep[i] = Math.floor(maxWeight / weight[i]!);
    remStep[i] = maxWeight % weight[i]!;
    q[i] = qStep[i]!;
    rem[i] = remStep[i]!;
    push((q[i]! + (rem[i]! > 0 ? 1 : 0)) * n + i);
  }
  for (let filled = 0; filled < size; filled++) {
    const key = pop();
    const i = key % n;
    claim(i);
    q[i] += qStep[i]!;
    rem[i] += remStep[i]!;
    if (rem[i]! >= weight[i]!) {
      q[i]++;
      rem[i] -= weight[i]!;
    }
    push((q[i]! + (rem[i]! > 0 ? 1 : 0)) * n + i);
  }
  return table;
}

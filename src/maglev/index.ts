// Ring builders: xdirector's Maglev table and the kernel IPVS mh table. Pure.
export {
  buildMaglev,
  isPrime,
  nextPrime,
  checkRingSize,
  maglevPermutation,
  DEFAULT_RING_SIZE,
  MAX_RING_SIZE,
} from './maglev';
export type { MaglevBackend } from './maglev';
export {
  buildIpvsMh,
  ipvsMhHash,
  ipvsMhHashKey,
  ipvsMhPermutation,
  ipvsMhTurns,
  ipvsMhLookup,
  ipvsMhTabIndex,
  ipvsMhAddrFold,
  IPVS_MH_PRIMES,
  IPVS_MH_DEFAULT_SIZE,
  IPVS_MH_DEFAULT_TAB_INDEX,
  IPVS_MH_KEY1,
  IPVS_MH_KEY2,
} from './ipvs-mh';
export type { IpvsMhDest } from './ipvs-mh';
export { siphash, hsiphash, hsiphash1u32, sipHashWords, sipKeyWords } from './siphash';
export type { SipKey, SipKeyWords } from './siphash';

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * prof.h: profile variants of the program (kernel only; never in the shipped
 * object). `bpftool prog profile` is refused under lockdown, so the packet
 * path is profiled by builds that stop after one stage and return XDP_TX:
 *
 *   make -C bpf OUT_DIR=/tmp/v3 EXTRA_CFLAGS=-DXD_PROF_STOP=3 /tmp/v3/xdirector.bpf.o
 *   node dist/scripts/bench/compare.js dist/bpf/xdirector.bpf.o /tmp/v3/xdirector.bpf.o
 *
 * The difference between two stops is what the stages between them cost.
 * Without XD_PROF_STOP every XD_PROF_AT() is empty and the object is the
 * product's, instruction for instruction. XD_PROF_INLINE builds the full
 * path's stages (established(), new_flow()) inline instead of as
 * subprograms, to count what the calls cost (the stack limit on Linux 6.1
 * is why they are calls: see flow.h, established()).
 */
#ifndef XD_PROF_H
#define XD_PROF_H

/* Stops on the full path of a new flow (the stage just named is the last
 * one run; nothing after it, neither the count nor the forward). */
#define XD_PROF_PARSE 1    /* parse_l3/parse_l4, key4_fill */
#define XD_PROF_EST 2      /* established(): cache probe, vip_port, a SYN's exit */
#define XD_PROF_SVC 3      /* new_flow(): the service lookup */
#define XD_PROF_CLOCK 4    /* the clock read */
#define XD_PROF_REUSE 5    /* syn_reuse(): flow, probation, takeover lookups */
#define XD_PROF_EMB 6      /* the embryonic lookup */
#define XD_PROF_RING 7     /* pick_backend(): slot hash, ring and backend reads */
#define XD_PROF_PLACE 8    /* flow_place(): the embryonic insert or the in-place write */
#define XD_PROF_COUNT 9    /* count_packet() at the exit (everything but the forward) */
#define XD_PROF_FORWARD 10 /* the forward itself: never a stop, the product runs it */
/* Stops on the fast path of a tunnel backend's flow hit. */
#define XD_PROF_TUN_ENTRY 21  /* fast_tunnel() entered, nothing done */
#define XD_PROF_TUN_KEY 22    /* the hash input read from the frame */
#define XD_PROF_TUN_LOOKUP 23 /* tunnel_forward(): the tunnel and backend entries */
#define XD_PROF_TUN_CHECK 24  /* xd_encap(): inner length, path-MTU check, flow hash */
#define XD_PROF_TUN_ADJUST 25 /* bpf_xdp_adjust_head, the L2 header moved */
#define XD_PROF_TUN_OUTER 26  /* the outer IP header (and its checksum) written */

#ifdef XD_PROF_STOP
/* Does this build run the full path's stage? (A tunnel stop runs them all.) */
#define XD_PROF_RUNS(stage) (XD_PROF_STOP > 20 || XD_PROF_STOP >= (stage))
#define XD_PROF_AT(stage, ret)               \
	do {                                 \
		if (XD_PROF_STOP == (stage)) \
			return (ret);        \
	} while (0)
#else
#define XD_PROF_RUNS(stage) 1
#define XD_PROF_AT(stage, ret) \
	do {                   \
	} while (0)
#endif

/* A stage of the full path: a subprogram, unless profiling the calls. */
#ifdef XD_PROF_INLINE
#define XD_STAGE __always_inline
#else
#define XD_STAGE __noinline
#endif

#endif /* XD_PROF_H */

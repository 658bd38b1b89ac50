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

/*
 * XD_PROF_TUN_REPEAT: a tunnel's encapsulation undone before the program
 * returns (the frame's start moved back, its Ethernet header rewritten to
 * what it was: addressed to this director, the inner EtherType), so a
 * repeated test run (one buffer, repeat=N) times the same packet every run
 * instead of its encapsulated copy. The undo costs a helper call of its own,
 * paid by every build that encapsulates: compare such builds with each
 * other, and stops before bpf_xdp_adjust_head with the same stop of another
 * build. XD_PROF_TUN_KEEP() notes the frame at the program's entry.
 */
#ifdef XD_PROF_TUN_REPEAT
#define XD_PROF_TUN_KEEP(ctx)                                                  \
	__u64 len0_ = (__u64)(long)(ctx)->data_end - (__u64)(long)(ctx)->data; \
	__be16 proto0_ = 0;                                                    \
	do {                                                                   \
		struct ethhdr *h_ = (void *)(long)(ctx)->data;                 \
		/* 64-bit, or clang narrows it (refused on packet pointers) */ \
		asm volatile("" : "+r"(len0_));                                \
		if ((void *)(h_ + 1) <= (void *)(long)(ctx)->data_end)         \
			proto0_ = h_->h_proto;                                 \
	} while (0)
#define XD_PROF_TUN_UNDO(ctx)                                  \
	do {                                                   \
		void *d_ = (void *)(long)(ctx)->data;          \
		void *e_ = (void *)(long)(ctx)->data_end;      \
		struct ethhdr *h_ = d_;                        \
		__u8 me_[ETH_ALEN];                            \
		int grew_;                                     \
                                                               \
		if ((void *)(h_ + 1) > e_)                     \
			break;                                 \
		grew_ = (int)((__u64)e_ - (__u64)d_) - len0_;  \
		if (grew_ <= 0 || grew_ > 64)                  \
			break;                                 \
		__builtin_memcpy(me_, h_->h_source, ETH_ALEN); \
		if (bpf_xdp_adjust_head((ctx), grew_))         \
			break;                                 \
		d_ = (void *)(long)(ctx)->data;                \
		e_ = (void *)(long)(ctx)->data_end;            \
		h_ = d_;                                       \
		if ((void *)(h_ + 1) > e_)                     \
			break;                                 \
		__builtin_memcpy(h_->h_dest, me_, ETH_ALEN);   \
		h_->h_proto = proto0_;                         \
	} while (0)
#else
#define XD_PROF_TUN_KEEP(ctx)
#define XD_PROF_TUN_UNDO(ctx) \
	do {                  \
	} while (0)
#endif

/* A stage of the full path: a subprogram, unless profiling the calls. */
#ifdef XD_PROF_INLINE
#define XD_STAGE __always_inline
#else
#define XD_STAGE __noinline
#endif

#endif /* XD_PROF_H */

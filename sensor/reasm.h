/* reasm.h — in-order TCP byte stream for one direction of a flow.
 *
 * reasm_segment() takes the segments of one direction in capture order and
 * pushes the stream to a sink in order, exactly once per byte:
 *  - retransmissions and the already-delivered part of overlaps are dropped
 *    (the first copy wins, as most receivers do); conflicting bytes are
 *    counted where both copies are held (out of order) — delivered bytes
 *    are not kept, so a late rewrite of them is dropped unseen;
 *  - out-of-order segments wait in a bounded buffer (REASM_OOO_BYTES,
 *    REASM_OOO_SEGS per direction, buffers from a capped pool);
 *  - bytes that will never come are reported to the sink as a gap: when the
 *    buffer is full, when the peer acknowledges past a hole, when the snap
 *    length cut a segment, and at reasm_flush() (flow end);
 *  - a FIN ends the direction (REASM_CLOSED) once every byte before it has
 *    come, not before; the latest FIN counts, one behind the bytes read or
 *    past REASM_WINDOW_MAX none, and bytes at or past its number void it
 *    (its receiver did not take it: forged, or dropped for its checksum or
 *    ACK), so an injected FIN cannot hide what follows.
 *
 * struct reasm_dir lives in caller memory (init/finish). OOO buffers belong to
 * the pool and are borrowed by a direction while it holds data out of order;
 * reasm_dir_finish() gives it back. Sequence numbers wrap (RFC 793 modular
 * comparison). Nothing is allocated per packet. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "decode.h"

#define REASM_OOO_BYTES (32 * 1024) /* out-of-order bytes held per direction */
#define REASM_OOO_SEGS  64          /* out-of-order segments held per direction */
#define REASM_POOL_DEFAULT 2048     /* directions holding out-of-order data at once */
/* A segment starting further than this past the next expected byte is taken
 * for garbage (a forged or mis-synchronised packet), dropped and counted,
 * rather than turned into a gigabyte gap. */
#define REASM_WINDOW_MAX (16u * 1024 * 1024)

struct reasm_sink {
	void (*data)(void *ctx, const uint8_t *p, uint32_t len);
	void (*gap)(void *ctx, uint32_t len);
	void *ctx;
};

struct reasm_stats {
	uint64_t delivered_bytes;
	uint64_t retrans_bytes;     /* bytes seen again and dropped */
	uint64_t overlap_conflicts; /* overlapping bytes that differed */
	uint64_t ooo_segments;      /* segments that had to wait */
	uint64_t ooo_overflows;     /* times the per-direction bound forced a gap */
	uint64_t pool_exhausted;    /* no buffer available: gap instead of waiting */
	uint64_t gaps, gap_bytes;
	uint64_t out_of_window;     /* segments beyond REASM_WINDOW_MAX, dropped */
	uint64_t pool_in_use, pool_peak;
};

struct reasm_pool;

/* max_buffers: at most REASM_POOL_MAX (more are not used). */
struct reasm_pool *reasm_pool_create(uint32_t max_buffers);
void reasm_pool_destroy(struct reasm_pool *pool);
const struct reasm_stats *reasm_stats(const struct reasm_pool *pool);

enum reasm_state { REASM_UNSYNCED = 0, REASM_SYNCED, REASM_CLOSED };

#define REASM_POOL_MAX ((1u << 24) - 1) /* buffers a pool can number */

/* 12 B: every flow holds two (130k flows at once in the benchmark). */
struct reasm_dir {
	uint32_t next_seq;   /* next byte we expect */
	uint32_t fin_seq;    /* sequence number of the FIN, when fin_seen */
	unsigned ooo : 24;   /* pool buffer index + 1, 0 = none */
	unsigned state : 2;  /* enum reasm_state */
	unsigned fin_seen : 1;
};

void reasm_dir_init(struct reasm_dir *d);
void reasm_dir_finish(struct reasm_dir *d, struct reasm_pool *pool);

/* One TCP segment of this direction (p->seq, p->flags, payload). */
void reasm_segment(struct reasm_dir *d, struct reasm_pool *pool, const struct packet *p,
		   const struct reasm_sink *sink);

/* The other direction acknowledged up to `ack`: bytes before it that we
 * never saw were received but not captured — report them as a gap at once
 * (as Zeek does) and deliver what was buffered after them. Only holes below
 * data seen (held out of order) count: an ACK past every byte seen is
 * taken no further than the last one. */
void reasm_peer_ack(struct reasm_dir *d, struct reasm_pool *pool, uint32_t ack,
		    const struct reasm_sink *sink);

/* Would the receiver take a RST from this direction at `seq`? RFC 5961
 * §3.2 receivers take one only at the next byte they expect and drop the
 * rest, so a RST elsewhere (forged or stale) ends nothing. Accepted: from
 * next_seq to one past the last sequence number seen (capture loss makes
 * next_seq lag), the FIN's included; anything when the direction is not
 * synchronised, there being nothing to judge by. */
bool reasm_rst_acceptable(const struct reasm_dir *d, const struct reasm_pool *pool, uint32_t seq);

/* Flow end: deliver what is buffered, with gaps for the holes. */
void reasm_flush(struct reasm_dir *d, struct reasm_pool *pool, const struct reasm_sink *sink);

/* RFC 793 modular sequence comparison. */
static inline bool reasm_seq_lt(uint32_t a, uint32_t b) { return (int32_t)(a - b) < 0; }
static inline bool reasm_seq_leq(uint32_t a, uint32_t b) { return (int32_t)(a - b) <= 0; }

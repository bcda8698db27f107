/* reasm.c — per-direction TCP reassembly; see reasm.h for the contract. */
#include "reasm.h"

#include <stdlib.h>
#include <string.h>

struct ooo_seg {
	uint32_t seq, len, off; /* data at buf->data + off */
};

/* Segments waiting for the bytes before them: sorted by seq, never
 * overlapping each other, data appended to data[] and compacted on demand. */
struct ooo_buf {
	uint32_t nseg;
	uint32_t used;      /* end of the append region in data[] */
	uint32_t held;      /* bytes referenced by segments */
	uint32_t next_free; /* pool free list: index + 1 */
	struct ooo_seg seg[REASM_OOO_SEGS];
	uint8_t data[REASM_OOO_BYTES];
};

struct reasm_pool {
	struct ooo_buf **bufs;
	uint32_t max, allocated;
	uint32_t free_head; /* index + 1 */
	struct reasm_stats stats;
};

struct reasm_pool *reasm_pool_create(uint32_t max_buffers)
{
	struct reasm_pool *pool = calloc(1, sizeof *pool);
	if (!pool)
		return NULL;
	pool->max = max_buffers < REASM_POOL_MAX ? max_buffers : REASM_POOL_MAX;
	pool->bufs = calloc(pool->max ? pool->max : 1, sizeof *pool->bufs);
	if (!pool->bufs) {
		free(pool);
		return NULL;
	}
	return pool;
}

void reasm_pool_destroy(struct reasm_pool *pool)
{
	if (!pool)
		return;
	for (uint32_t i = 0; i < pool->allocated; i++)
		free(pool->bufs[i]);
	free(pool->bufs);
	free(pool);
}

const struct reasm_stats *reasm_stats(const struct reasm_pool *pool)
{
	return &pool->stats;
}

/* Buffers are allocated the first time the pool grows to need them and then
 * recycled through the free list: steady state allocates nothing. */
static struct ooo_buf *buf_get(struct reasm_pool *pool, struct reasm_dir *d)
{
	if (d->ooo)
		return pool->bufs[d->ooo - 1];
	uint32_t idx;
	if (pool->free_head) {
		idx = pool->free_head - 1;
		pool->free_head = pool->bufs[idx]->next_free;
	} else if (pool->allocated < pool->max) {
		struct ooo_buf *b = malloc(sizeof *b);
		if (!b)
			return NULL;
		idx = pool->allocated++;
		pool->bufs[idx] = b;
	} else {
		pool->stats.pool_exhausted++;
		return NULL;
	}
	struct ooo_buf *b = pool->bufs[idx];
	b->nseg = b->used = b->held = b->next_free = 0;
	d->ooo = idx + 1;
	if (++pool->stats.pool_in_use > pool->stats.pool_peak)
		pool->stats.pool_peak = pool->stats.pool_in_use;
	return b;
}

static struct ooo_buf *buf_of(struct reasm_pool *pool, const struct reasm_dir *d)
{
	return d->ooo ? pool->bufs[d->ooo - 1] : NULL;
}

static void buf_put(struct reasm_pool *pool, struct reasm_dir *d)
{
	if (!d->ooo)
		return;
	pool->bufs[d->ooo - 1]->next_free = pool->free_head;
	pool->free_head = d->ooo;
	d->ooo = 0;
	pool->stats.pool_in_use--;
}

void reasm_dir_init(struct reasm_dir *d)
{
	memset(d, 0, sizeof *d);
}

void reasm_dir_finish(struct reasm_dir *d, struct reasm_pool *pool)
{
	buf_put(pool, d);
	d->state = REASM_CLOSED;
}

static void deliver(struct reasm_dir *d, struct reasm_pool *pool, const uint8_t *p,
		    uint32_t len, const struct reasm_sink *sink)
{
	if (len == 0)
		return;
	pool->stats.delivered_bytes += len;
	d->next_seq += len;
	sink->data(sink->ctx, p, len);
}

static void gap(struct reasm_dir *d, struct reasm_pool *pool, uint32_t len,
		const struct reasm_sink *sink)
{
	if (len == 0)
		return;
	pool->stats.gaps++;
	pool->stats.gap_bytes += len;
	d->next_seq += len;
	sink->gap(sink->ctx, len);
}

/* Deliver the buffered segments that have become contiguous. */
static void drain(struct reasm_dir *d, struct reasm_pool *pool, const struct reasm_sink *sink)
{
	struct ooo_buf *b = buf_of(pool, d);
	if (!b)
		return;
	uint32_t i = 0;
	while (i < b->nseg && reasm_seq_leq(b->seg[i].seq, d->next_seq)) {
		const struct ooo_seg *s = &b->seg[i];
		uint32_t end = s->seq + s->len;
		if (reasm_seq_lt(d->next_seq, end)) {
			uint32_t skip = d->next_seq - s->seq;
			pool->stats.retrans_bytes += skip;
			deliver(d, pool, b->data + s->off + skip, s->len - skip, sink);
		} else {
			pool->stats.retrans_bytes += s->len;
		}
		b->held -= s->len;
		i++;
	}
	if (i) {
		b->nseg -= i;
		memmove(b->seg, b->seg + i, b->nseg * sizeof b->seg[0]);
	}
	if (b->nseg == 0)
		buf_put(pool, d);
}

/* Move segment data to the front of data[] so free space is contiguous. */
static void compact(struct ooo_buf *b)
{
	uint32_t off = 0;
	for (uint32_t i = 0; i < b->nseg; i++) {
		memmove(b->data + off, b->data + b->seg[i].off, b->seg[i].len);
		b->seg[i].off = off;
		off += b->seg[i].len;
	}
	b->used = off;
}

static bool fits(const struct ooo_buf *b, uint32_t len)
{
	return b->nseg < REASM_OOO_SEGS && b->held + len <= REASM_OOO_BYTES;
}

static void insert_piece(struct ooo_buf *b, uint32_t at, uint32_t seq, const uint8_t *p,
			 uint32_t len)
{
	if (b->used + len > REASM_OOO_BYTES)
		compact(b);
	memmove(b->seg + at + 1, b->seg + at, (b->nseg - at) * sizeof b->seg[0]);
	b->seg[at] = (struct ooo_seg){ seq, len, b->used };
	memcpy(b->data + b->used, p, len);
	b->used += len;
	b->held += len;
	b->nseg++;
}

/* Store [seq, seq+len) around what is already buffered: the bytes already
 * held win, the new copy only fills holes (conflicts are counted). Returns
 * false if the bound does not allow storing all of it. */
static bool ooo_insert(struct reasm_pool *pool, struct ooo_buf *b, uint32_t seq,
		       const uint8_t *p, uint32_t len)
{
	uint32_t end = seq + len;
	uint32_t i = 0;
	while (reasm_seq_lt(seq, end)) {
		while (i < b->nseg && reasm_seq_leq(b->seg[i].seq + b->seg[i].len, seq))
			i++;
		uint32_t piece_end = end;
		if (i < b->nseg && reasm_seq_lt(b->seg[i].seq, end)) {
			const struct ooo_seg *s = &b->seg[i];
			if (reasm_seq_leq(s->seq, seq)) {
				/* Overlap with a held segment: keep the held bytes. */
				uint32_t ov_end = reasm_seq_lt(s->seq + s->len, end) ? s->seq + s->len : end;
				uint32_t n = ov_end - seq;
				if (memcmp(b->data + s->off + (seq - s->seq), p, n) != 0)
					pool->stats.overlap_conflicts++;
				pool->stats.retrans_bytes += n;
				p += n;
				seq = ov_end;
				continue;
			}
			piece_end = s->seq;
		}
		uint32_t n = piece_end - seq;
		if (!fits(b, n))
			return false;
		insert_piece(b, i, seq, p, n);
		i++;
		p += n;
		seq = piece_end;
	}
	return true;
}

/* A FIN whose number is `fin_seq` (after the segment's bytes). The stream
 * ends there once every byte before it has come (check_fin), not before.
 * The latest FIN counts, as in Zeek; one behind the bytes already read (an
 * old one) or further ahead than any segment is taken ends nothing. */
static void note_fin(struct reasm_dir *d, struct reasm_pool *pool, uint32_t fin_seq)
{
	if (d->state != REASM_UNSYNCED) {
		if (reasm_seq_lt(fin_seq, d->next_seq))
			return;
		if (fin_seq - d->next_seq > REASM_WINDOW_MAX) {
			pool->stats.out_of_window++;
			return;
		}
	}
	d->fin_seen = true;
	d->fin_seq = fin_seq;
}

static void check_fin(struct reasm_dir *d, struct reasm_pool *pool)
{
	if (d->fin_seen && d->state == REASM_SYNCED && d->next_seq == d->fin_seq &&
	    !buf_of(pool, d))
		d->state = REASM_CLOSED;
}

/* One past the last byte seen from this direction, in order or held. */
static uint32_t seen_end(const struct reasm_dir *d, const struct reasm_pool *pool)
{
	const struct ooo_buf *held = d->ooo ? pool->bufs[d->ooo - 1] : NULL;
	uint32_t seen = d->next_seq;
	if (held && held->nseg) {
		const struct ooo_seg *last = &held->seg[held->nseg - 1];
		if (reasm_seq_lt(seen, last->seq + last->len))
			seen = last->seq + last->len;
	}
	return seen;
}

/* In-window data at or after next_seq. */
static void take(struct reasm_dir *d, struct reasm_pool *pool, uint32_t seq,
		 const uint8_t *p, uint32_t len, uint32_t wire, const struct reasm_sink *sink)
{
	for (;;) {
		if (reasm_seq_leq(seq + wire, d->next_seq)) {
			pool->stats.retrans_bytes += wire;
			return;
		}
		if (reasm_seq_lt(seq, d->next_seq)) {
			uint32_t skip = d->next_seq - seq;
			pool->stats.retrans_bytes += skip;
			p += skip < len ? skip : len;
			len = skip < len ? len - skip : 0;
			wire -= skip;
			seq = d->next_seq;
		}
		if (seq == d->next_seq) {
			deliver(d, pool, p, len, sink);
			gap(d, pool, wire - len, sink); /* cut by the snap length */
			drain(d, pool, sink);
			return;
		}
		if (seq - d->next_seq > REASM_WINDOW_MAX) {
			pool->stats.out_of_window++;
			return;
		}
		/* A keep-alive: one byte at the sender's next sequence number
		 * - 1 (Wireshark's "TCP Keep-Alive"), garbage or the last byte
		 * again. In order it is an old byte (above); while bytes wait
		 * for a hole it is the last one held, and its garbage is no
		 * conflict. */
		if (wire == 1 && seq + 1 == seen_end(d, pool)) {
			pool->stats.retrans_bytes++;
			return;
		}
		/* Out of order: wait for the bytes before it, within the bound. */
		struct ooo_buf *b = buf_get(pool, d);
		if (!b) {
			gap(d, pool, seq - d->next_seq, sink);
			continue;
		}
		pool->stats.ooo_segments++;
		if (ooo_insert(pool, b, seq, p, len))
			return;
		/* Full: give up on the oldest hole and deliver what follows it. */
		pool->stats.ooo_overflows++;
		uint32_t to = b->nseg ? b->seg[0].seq : seq;
		if (reasm_seq_lt(seq, to))
			to = seq;
		gap(d, pool, to - d->next_seq, sink);
		drain(d, pool, sink);
	}
}

void reasm_segment(struct reasm_dir *d, struct reasm_pool *pool, const struct packet *p,
		   const struct reasm_sink *sink)
{
	uint32_t seq = p->seq;
	if (p->flags & TCP_SYN) {
		if (d->state == REASM_UNSYNCED) {
			d->next_seq = seq + 1;
			d->state = REASM_SYNCED;
		}
		seq++; /* the SYN occupies one sequence number */
	}
	if (p->flags & TCP_RST)
		return; /* RFC 1122 §4.2.2.12: RST data is diagnostic, not stream */
	uint32_t end = seq + p->payload_wire_len;
	/* what take() does not drop as garbage (REASM_WINDOW_MAX) */
	bool in_window = d->state == REASM_UNSYNCED || reasm_seq_leq(seq, d->next_seq) ||
			 seq - d->next_seq <= REASM_WINDOW_MAX;
	/* Bytes at or past a FIN's number void it: a receiver that had taken
	 * the FIN answers them with a RST, one that had not (it was forged, or
	 * dropped for its checksum or its ACK) takes them, and one holding it
	 * out of order drops it as old once bytes cover it (Linux). Either
	 * way the sender's stream did not end there: an injected FIN must not
	 * hide the commands after it. */
	if (d->fin_seen && p->payload_wire_len > 0 && in_window && reasm_seq_lt(d->fin_seq, end)) {
		d->fin_seen = false;
		if (d->state == REASM_CLOSED)
			d->state = REASM_SYNCED;
	}
	if (p->flags & TCP_FIN)
		note_fin(d, pool, end);
	if (p->payload_wire_len > 0 && d->state != REASM_CLOSED) {
		if (d->state == REASM_UNSYNCED) {
			d->next_seq = seq; /* joined mid-stream */
			d->state = REASM_SYNCED;
		}
		take(d, pool, seq, p->payload, p->payload_len, p->payload_wire_len, sink);
	}
	check_fin(d, pool);
}

bool reasm_rst_acceptable(const struct reasm_dir *d, const struct reasm_pool *pool, uint32_t seq)
{
	if (d->state == REASM_UNSYNCED)
		return true; /* nothing seen to judge by */
	uint32_t last = seen_end(d, pool);
	if (d->fin_seen && reasm_seq_lt(last, d->fin_seq + 1))
		last = d->fin_seq + 1; /* a RST after the FIN: the FIN's number + 1 */
	return reasm_seq_leq(d->next_seq, seq) && reasm_seq_leq(seq, last);
}

void reasm_peer_ack(struct reasm_dir *d, struct reasm_pool *pool, uint32_t ack,
		    const struct reasm_sink *sink)
{
	if (d->state != REASM_SYNCED)
		return; /* a side never seen sending reports no gaps (one-sided captures) */
	/* Only bytes seen sent can be seen acknowledged. The acknowledger's
	 * word alone is no proof: a receiver ignores an ACK for data not yet
	 * sent (RFC 793 §3.9), and a forged one would otherwise make the
	 * sender's next real bytes look like old ones. A hole below data
	 * held out of order is a hole; bytes lost past the last one seen
	 * become a gap once later data, or the FIN, shows where they end. */
	uint32_t seen = seen_end(d, pool);
	if (reasm_seq_lt(seen, ack))
		ack = seen;
	/* The FIN takes a sequence number but carries no byte. */
	if (d->fin_seen && reasm_seq_lt(d->fin_seq, ack))
		ack = d->fin_seq;
	/* The receiver has every byte before `ack`: a hole below it was lost by
	 * the capture, not the network, and no retransmission will fill it. */
	while (reasm_seq_lt(d->next_seq, ack)) {
		struct ooo_buf *b = buf_of(pool, d);
		uint32_t to = ack;
		if (b && b->nseg && reasm_seq_lt(b->seg[0].seq, ack))
			to = b->seg[0].seq;
		gap(d, pool, to - d->next_seq, sink);
		drain(d, pool, sink);
	}
	check_fin(d, pool);
}

void reasm_flush(struct reasm_dir *d, struct reasm_pool *pool, const struct reasm_sink *sink)
{
	struct ooo_buf *b;
	while ((b = buf_of(pool, d)) && b->nseg) {
		gap(d, pool, b->seg[0].seq - d->next_seq, sink);
		drain(d, pool, sink);
	}
	if (d->state == REASM_SYNCED && d->fin_seen && reasm_seq_lt(d->next_seq, d->fin_seq))
		gap(d, pool, d->fin_seq - d->next_seq, sink);
	check_fin(d, pool);
}

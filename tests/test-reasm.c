/* test-reasm.c — sensor/reasm.c: order, retransmission, overlap, bounds,
 * gaps, sequence wrap-around. The sink records the stream as a string in
 * which a gap of n bytes appears as "<gap n>". */
#include "testlib.h"

#include "reasm.h"

static char out[1 << 20];
static size_t outlen;

static void on_data(void *ctx, const uint8_t *p, uint32_t len)
{
	(void)ctx;
	memcpy(out + outlen, p, len);
	outlen += len;
	out[outlen] = 0;
}

static void on_gap(void *ctx, uint32_t len)
{
	(void)ctx;
	outlen += (size_t)snprintf(out + outlen, sizeof out - outlen, "<gap %u>", len);
}

static const struct reasm_sink sink = { on_data, on_gap, NULL };

static void reset(struct reasm_dir *d)
{
	reasm_dir_init(d);
	outlen = 0;
	out[0] = 0;
}

static void seg(struct reasm_dir *d, struct reasm_pool *pool, uint32_t seq, uint8_t flags,
		const char *data)
{
	struct packet p = { 0 };
	p.seq = seq;
	p.flags = flags;
	p.payload = (const uint8_t *)data;
	p.payload_len = p.payload_wire_len = (uint32_t)strlen(data);
	reasm_segment(d, pool, &p, &sink);
}

static void test_in_order_with_syn(void)
{
	struct reasm_pool *pool = reasm_pool_create(4);
	struct reasm_dir d;
	reset(&d);
	seg(&d, pool, 999, TCP_SYN, "");
	seg(&d, pool, 1000, TCP_ACK, "EHLO ");
	seg(&d, pool, 1005, TCP_ACK, "x\r\n");
	CHECK_STR(out, "EHLO x\r\n");
	seg(&d, pool, 1008, TCP_ACK | TCP_FIN, "");
	CHECK_INT(d.state, REASM_CLOSED);
	reasm_dir_finish(&d, pool);
	reasm_pool_destroy(pool);
}

static void test_retransmission_and_overlap(void)
{
	struct reasm_pool *pool = reasm_pool_create(4);
	struct reasm_dir d;
	reset(&d);
	seg(&d, pool, 100, TCP_ACK, "abcdef");
	seg(&d, pool, 100, TCP_ACK, "abcdef");   /* exact retransmission */
	seg(&d, pool, 103, TCP_ACK, "defGHI");   /* overlap: only GHI is new */
	CHECK_STR(out, "abcdefGHI");
	CHECK_INT(reasm_stats(pool)->retrans_bytes, 9);
	reasm_pool_destroy(pool);
}

static void test_out_of_order(void)
{
	struct reasm_pool *pool = reasm_pool_create(4);
	struct reasm_dir d;
	reset(&d);
	seg(&d, pool, 1, TCP_ACK, "one ");
	seg(&d, pool, 9, TCP_ACK, "three ");
	seg(&d, pool, 5, TCP_ACK, "two ");
	CHECK_STR(out, "one two three ");
	CHECK_INT(reasm_stats(pool)->ooo_segments, 1);
	CHECK_INT(reasm_stats(pool)->pool_in_use, 0); /* buffer returned when drained */
	reasm_pool_destroy(pool);
}

static void test_ooo_overlap_first_copy_wins(void)
{
	struct reasm_pool *pool = reasm_pool_create(4);
	struct reasm_dir d;
	reset(&d);
	seg(&d, pool, 0, TCP_ACK, "0123");
	seg(&d, pool, 8, TCP_ACK, "89ab");
	seg(&d, pool, 6, TCP_ACK, "67XXcdEF"); /* overlaps 89ab with different bytes */
	seg(&d, pool, 4, TCP_ACK, "45");
	CHECK_STR(out, "0123456789abEF");
	CHECK_INT(reasm_stats(pool)->overlap_conflicts, 1);
	reasm_pool_destroy(pool);
}

static void test_ooo_byte_bound(void)
{
	/* Exactly REASM_OOO_BYTES wait without loss; one byte more forces a gap
	 * over the hole and delivers what followed it. */
	static char big[REASM_OOO_BYTES + 2];
	for (int extra = 0; extra <= 1; extra++) {
		struct reasm_pool *pool = reasm_pool_create(4);
		struct reasm_dir d;
		reset(&d);
		seg(&d, pool, 0, TCP_ACK, "A");
		memset(big, 'x', REASM_OOO_BYTES);
		big[REASM_OOO_BYTES] = 0;
		seg(&d, pool, 11, TCP_ACK, big); /* hole [1, 11) */
		CHECK_STR(out, "A");
		big[0] = 0;
		if (extra) {
			seg(&d, pool, 11 + REASM_OOO_BYTES, TCP_ACK, "y");
			CHECK_INT(reasm_stats(pool)->ooo_overflows, 1);
			CHECK(strncmp(out, "A<gap 10>xxx", 12) == 0);
			CHECK_INT(outlen, 1 + 8 + REASM_OOO_BYTES + 1);
			CHECK_INT(out[outlen - 1], 'y');
		} else {
			seg(&d, pool, 1, TCP_ACK, "0123456789");
			CHECK_INT(reasm_stats(pool)->ooo_overflows, 0);
			CHECK(strncmp(out, "A0123456789xxx", 14) == 0);
			CHECK_INT(outlen, 11 + REASM_OOO_BYTES);
		}
		reasm_pool_destroy(pool);
	}
}

static void test_ooo_segment_bound(void)
{
	/* REASM_OOO_SEGS one-byte segments wait; the next one forces a gap. */
	for (int extra = 0; extra <= 1; extra++) {
		struct reasm_pool *pool = reasm_pool_create(4);
		struct reasm_dir d;
		reset(&d);
		seg(&d, pool, 0, TCP_ACK, "A");
		for (uint32_t i = 0; i < REASM_OOO_SEGS + (uint32_t)extra; i++)
			seg(&d, pool, 10 + 2 * i, TCP_ACK, "s"); /* every other byte missing */
		CHECK_INT(reasm_stats(pool)->ooo_overflows, extra);
		CHECK(extra ? outlen > 1 : outlen == 1);
		reasm_pool_destroy(pool);
	}
}

static void test_pool_exhausted_means_gap(void)
{
	struct reasm_pool *pool = reasm_pool_create(1);
	struct reasm_dir d1, d2;
	reset(&d1);
	reasm_dir_init(&d2);
	seg(&d1, pool, 0, TCP_ACK, "a");
	seg(&d1, pool, 5, TCP_ACK, "b"); /* takes the only buffer */
	seg(&d2, pool, 0, TCP_ACK, "c");
	seg(&d2, pool, 5, TCP_ACK, "d"); /* none left: gap, then deliver */
	CHECK_STR(out, "ac<gap 4>d");
	CHECK_INT(reasm_stats(pool)->pool_exhausted, 1);
	reasm_flush(&d1, pool, &sink);
	CHECK_STR(out, "ac<gap 4>d<gap 4>b");
	reasm_dir_finish(&d1, pool);
	reasm_dir_finish(&d2, pool);
	CHECK_INT(reasm_stats(pool)->pool_in_use, 0);
	reasm_pool_destroy(pool);
}

static void test_peer_ack_reports_capture_loss(void)
{
	struct reasm_pool *pool = reasm_pool_create(4);
	struct reasm_dir d;
	reset(&d);
	seg(&d, pool, 0, TCP_ACK, "abc");
	seg(&d, pool, 10, TCP_ACK, "klm");
	reasm_peer_ack(&d, pool, 3, &sink);   /* nothing missing below the ack */
	CHECK_STR(out, "abc");
	reasm_peer_ack(&d, pool, 5, &sink);   /* the receiver has 3..4: lost by the capture */
	CHECK_STR(out, "abc<gap 2>");
	reasm_peer_ack(&d, pool, 13, &sink);  /* and 5..9; then the buffered data follows */
	CHECK_STR(out, "abc<gap 2><gap 5>klm");
	/* a direction that never sent is never gapped (one-sided captures) */
	struct reasm_dir quiet;
	reasm_dir_init(&quiet);
	reasm_peer_ack(&quiet, pool, 1000, &sink);
	CHECK_STR(out, "abc<gap 2><gap 5>klm");
	/* the FIN's sequence number is not a missing byte */
	seg(&d, pool, 13, TCP_ACK | TCP_FIN, "");
	reasm_peer_ack(&d, pool, 14, &sink);
	CHECK_STR(out, "abc<gap 2><gap 5>klm");
	CHECK_INT(d.state, REASM_CLOSED);
	reasm_pool_destroy(pool);
}

static void test_peer_ack_beyond_sent(void)
{
	/* An ACK for bytes the sender was never seen sending (forged, or
	 * anything a receiver drops) is no evidence they were lost: the
	 * data sent next at those numbers is still the stream. */
	struct reasm_pool *pool = reasm_pool_create(4);
	struct reasm_dir d;
	reset(&d);
	seg(&d, pool, 0, TCP_ACK, "abc");
	reasm_peer_ack(&d, pool, 100000, &sink);
	seg(&d, pool, 3, TCP_ACK, "def");
	CHECK_STR(out, "abcdef");
	/* what was seen out of order still bounds it: the hole below is a gap */
	seg(&d, pool, 10, TCP_ACK, "klm");
	reasm_peer_ack(&d, pool, 0x7fffffffu, &sink);
	seg(&d, pool, 13, TCP_ACK, "nop");
	CHECK_STR(out, "abcdef<gap 4>klmnop");
	CHECK_INT(reasm_stats(pool)->retrans_bytes, 0);
	reasm_pool_destroy(pool);
}

static void test_rst_acceptable(void)
{
	/* RFC 5961 §3.2: a receiver takes a RST only at the next byte it
	 * expects; we allow up to the last sequence number seen sent (capture
	 * loss makes next_seq lag), the FIN's included, and nothing else. */
	struct reasm_pool *pool = reasm_pool_create(4);
	struct reasm_dir d;
	reset(&d);
	CHECK(reasm_rst_acceptable(&d, pool, 12345)); /* never seen: no grounds */
	seg(&d, pool, 100, TCP_ACK, "abc");
	CHECK(reasm_rst_acceptable(&d, pool, 103));
	CHECK(!reasm_rst_acceptable(&d, pool, 102));  /* in the past */
	CHECK(!reasm_rst_acceptable(&d, pool, 104));  /* past every byte seen */
	CHECK(!reasm_rst_acceptable(&d, pool, 103 + 3000000));
	seg(&d, pool, 110, TCP_ACK, "xyz");           /* held out of order */
	CHECK(reasm_rst_acceptable(&d, pool, 113));
	CHECK(!reasm_rst_acceptable(&d, pool, 114));
	seg(&d, pool, 103, TCP_ACK, "defghij");
	seg(&d, pool, 113, TCP_ACK | TCP_FIN, "");    /* after the FIN: FIN + 1 */
	CHECK(reasm_rst_acceptable(&d, pool, 114));
	CHECK(!reasm_rst_acceptable(&d, pool, 115));
	reasm_dir_finish(&d, pool);
	reasm_pool_destroy(pool);
}

static void test_sequence_wraparound(void)
{
	struct reasm_pool *pool = reasm_pool_create(4);
	struct reasm_dir d;
	reset(&d);
	seg(&d, pool, 0xfffffffcu, TCP_ACK, "wrap");
	seg(&d, pool, 4, TCP_ACK, "ed!!");      /* out of order, past the wrap */
	CHECK_STR(out, "wrap");
	seg(&d, pool, 0, TCP_ACK, "ping");      /* fills the hole at the wrap */
	CHECK_STR(out, "wrappinged!!");
	seg(&d, pool, 0xfffffffeu, TCP_ACK, "apping"); /* old bytes across the wrap */
	CHECK_STR(out, "wrappinged!!");
	CHECK_INT(reasm_stats(pool)->retrans_bytes, 6);
	reasm_pool_destroy(pool);
}

static void test_snaplen_cut_is_a_gap(void)
{
	struct reasm_pool *pool = reasm_pool_create(4);
	struct reasm_dir d;
	reset(&d);
	struct packet p = { 0 };
	p.seq = 0;
	p.flags = TCP_ACK;
	p.payload = (const uint8_t *)"head";
	p.payload_len = 4;
	p.payload_wire_len = 10;
	reasm_segment(&d, pool, &p, &sink);
	seg(&d, pool, 10, TCP_ACK, "next");
	CHECK_STR(out, "head<gap 6>next");
	reasm_pool_destroy(pool);
}

static void test_far_segment_is_dropped(void)
{
	struct reasm_pool *pool = reasm_pool_create(4);
	struct reasm_dir d;
	reset(&d);
	seg(&d, pool, 0, TCP_ACK, "ok");
	seg(&d, pool, 2 + REASM_WINDOW_MAX + 1, TCP_ACK, "forged");
	seg(&d, pool, 2, TCP_ACK, "!");
	reasm_flush(&d, pool, &sink);
	CHECK_STR(out, "ok!");
	CHECK_INT(reasm_stats(pool)->out_of_window, 1);
	reasm_pool_destroy(pool);
}

static void test_rst_payload_ignored_and_fin_gap(void)
{
	struct reasm_pool *pool = reasm_pool_create(4);
	struct reasm_dir d;
	reset(&d);
	seg(&d, pool, 0, TCP_ACK, "abc");
	seg(&d, pool, 3, TCP_RST, "diagnostic");
	seg(&d, pool, 8, TCP_ACK | TCP_FIN, "");  /* FIN at 8: bytes 3..7 never seen */
	reasm_flush(&d, pool, &sink);
	CHECK_STR(out, "abc<gap 5>");
	CHECK_INT(d.state, REASM_CLOSED);
	reasm_pool_destroy(pool);
}

static void test_data_after_fin_reopens(void)
{
	/* A FIN its receiver dropped (bad checksum, an ACK of unsent data, no
	 * ACK at all) is followed by bytes at its own number: they are the
	 * stream. A receiver that had taken it would have reset. */
	struct reasm_pool *pool = reasm_pool_create(4);
	struct reasm_dir d;
	reset(&d);
	seg(&d, pool, 0, TCP_ACK, "abc");
	seg(&d, pool, 3, TCP_ACK | TCP_FIN, "");
	CHECK_INT(d.state, REASM_CLOSED);
	seg(&d, pool, 3, TCP_ACK, "def");
	CHECK_STR(out, "abcdef");
	CHECK_INT(d.state, REASM_SYNCED);
	CHECK(!d.fin_seen);
	seg(&d, pool, 6, TCP_ACK | TCP_FIN, "gh");  /* the real end */
	CHECK_STR(out, "abcdefgh");
	CHECK_INT(d.state, REASM_CLOSED);
	seg(&d, pool, 3, TCP_ACK, "def");           /* old bytes: no reopening */
	CHECK_INT(d.state, REASM_CLOSED);
	reasm_pool_destroy(pool);
}

static void test_fin_ahead(void)
{
	/* A FIN ahead of the next byte ends the stream when the bytes before
	 * it have come, not before; bytes that cover its number void it (a
	 * receiver drops such a FIN as old), and the next FIN counts. */
	struct reasm_pool *pool = reasm_pool_create(4);
	struct reasm_dir d;
	reset(&d);
	seg(&d, pool, 0, TCP_ACK, "abc");
	seg(&d, pool, 10, TCP_ACK | TCP_FIN, "");
	CHECK_INT(d.state, REASM_SYNCED);
	seg(&d, pool, 3, TCP_ACK, "defg");
	CHECK_INT(d.state, REASM_SYNCED);
	seg(&d, pool, 7, TCP_ACK, "hij");
	CHECK_STR(out, "abcdefghij");
	CHECK_INT(d.state, REASM_CLOSED);
	reset(&d);
	seg(&d, pool, 0, TCP_ACK, "abc");
	seg(&d, pool, 5, TCP_ACK | TCP_FIN, "");
	seg(&d, pool, 3, TCP_ACK, "defghij");       /* covers 5 */
	CHECK(!d.fin_seen);
	CHECK_INT(d.state, REASM_SYNCED);
	/* the voided FIN no longer bounds what an ACK shows lost */
	seg(&d, pool, 20, TCP_ACK, "uv");
	reasm_peer_ack(&d, pool, 22, &sink);
	CHECK_STR(out, "abcdefghij<gap 10>uv");
	seg(&d, pool, 22, TCP_ACK | TCP_FIN, "");
	CHECK_INT(d.state, REASM_CLOSED);
	reasm_dir_finish(&d, pool);
	reasm_pool_destroy(pool);
}

static void test_fin_old_or_far_ignored(void)
{
	/* A FIN behind the bytes already read, or further ahead than any
	 * segment is taken (REASM_WINDOW_MAX), ends nothing and bounds
	 * nothing: flush reports no gap up to it. */
	struct reasm_pool *pool = reasm_pool_create(4);
	struct reasm_dir d;
	reset(&d);
	seg(&d, pool, 0, TCP_ACK, "abcdef");
	seg(&d, pool, 2, TCP_ACK | TCP_FIN, "");
	CHECK(!d.fin_seen);
	seg(&d, pool, 6 + REASM_WINDOW_MAX + 1, TCP_ACK | TCP_FIN, "");
	CHECK(!d.fin_seen);
	seg(&d, pool, 6, TCP_ACK, "gh");
	reasm_flush(&d, pool, &sink);
	CHECK_STR(out, "abcdefgh");
	CHECK_INT(d.state, REASM_SYNCED);
	seg(&d, pool, 8, TCP_ACK | TCP_FIN, "");
	CHECK_INT(d.state, REASM_CLOSED);
	reasm_pool_destroy(pool);
}

static void test_keepalive(void)
{
	/* A keep-alive is one byte, garbage or the last one sent, at the
	 * sender's next sequence number - 1 (Wireshark's "TCP Keep-Alive"):
	 * an old byte, neither a conflict, a gap nor stream. */
	struct reasm_pool *pool = reasm_pool_create(4);
	struct reasm_dir d;
	reset(&d);
	uint64_t conflicts = reasm_stats(pool)->overlap_conflicts;
	uint64_t gaps = reasm_stats(pool)->gaps;
	seg(&d, pool, 0, TCP_ACK, "abcd");
	seg(&d, pool, 3, TCP_ACK, "Z");
	seg(&d, pool, 3, TCP_ACK, "d");
	reasm_peer_ack(&d, pool, 4, &sink);
	CHECK_STR(out, "abcd");
	/* while later bytes wait for a hole: the last byte held is the one */
	seg(&d, pool, 10, TCP_ACK, "klm");
	seg(&d, pool, 12, TCP_ACK, "Z");
	seg(&d, pool, 12, TCP_ACK, "m");
	seg(&d, pool, 4, TCP_ACK, "efghij");
	CHECK_STR(out, "abcdefghijklm");
	CHECK_INT(reasm_stats(pool)->overlap_conflicts, conflicts);
	CHECK_INT(reasm_stats(pool)->gaps, gaps);
	CHECK_INT(reasm_stats(pool)->pool_in_use, 0);
	/* a real conflict inside held bytes is still counted */
	seg(&d, pool, 20, TCP_ACK, "uvw");
	seg(&d, pool, 20, TCP_ACK, "U");
	CHECK_INT(reasm_stats(pool)->overlap_conflicts, conflicts + 1);
	reasm_dir_finish(&d, pool);
	reasm_pool_destroy(pool);
}

int main(void)
{
	RUN(test_in_order_with_syn);
	RUN(test_retransmission_and_overlap);
	RUN(test_out_of_order);
	RUN(test_ooo_overlap_first_copy_wins);
	RUN(test_ooo_byte_bound);
	RUN(test_ooo_segment_bound);
	RUN(test_pool_exhausted_means_gap);
	RUN(test_peer_ack_reports_capture_loss);
	RUN(test_peer_ack_beyond_sent);
	RUN(test_rst_acceptable);
	RUN(test_sequence_wraparound);
	RUN(test_snaplen_cut_is_a_gap);
	RUN(test_far_segment_is_dropped);
	RUN(test_rst_payload_ignored_and_fin_gap);
	RUN(test_data_after_fin_reopens);
	RUN(test_fin_ahead);
	RUN(test_fin_old_or_far_ignored);
	RUN(test_keepalive);
	return TEST_EXIT();
}

/* test-flow.c — sensor/flow.c: both directions, who opened, bounds and
 * eviction order, expiry in packet time, port reuse, ending on request. */
#include "testlib.h"

#include "flow.h"

static int ended[8];
static struct flow last_ended;

static void on_end(void *ctx, struct flow *f, uint32_t idx, enum flow_end_reason why)
{
	(void)ctx;
	(void)idx;
	ended[why]++;
	last_ended = *f;
}

static struct packet pkt(uint8_t src_last, uint16_t sport, uint8_t dst_last, uint16_t dport,
			 uint8_t flags, uint32_t plen, uint64_t ts)
{
	struct packet p;
	memset(&p, 0, sizeof p);
	p.src[0] = 10; p.src[3] = src_last;
	p.dst[0] = 10; p.dst[3] = dst_last;
	p.sport = sport;
	p.dport = dport;
	p.flags = flags;
	p.payload_wire_len = plen;
	p.ts_us = ts;
	return p;
}

static struct flow_table *make(uint32_t max)
{
	memset(ended, 0, sizeof ended);
	struct flow_table_config cfg = { max, 30000000, 300000000, 5000000, 0 };
	return flow_table_create(&cfg, on_end, NULL);
}

static void test_both_directions_one_flow(void)
{
	struct flow_table *t = make(16);
	enum flow_dir dir;
	bool created;
	struct packet a = pkt(1, 40000, 2, 25, TCP_SYN, 0, 1);
	struct flow *f = flow_table_packet(t, &a, &dir, &created);
	CHECK(created);
	CHECK_INT(dir, FLOW_DIR_ORIG);
	CHECK_INT(f->orig_p, 40000);
	struct packet b = pkt(2, 25, 1, 40000, TCP_SYN | TCP_ACK, 0, 2);
	struct flow *g = flow_table_packet(t, &b, &dir, &created);
	CHECK(f == g);
	CHECK(!created);
	CHECK_INT(dir, FLOW_DIR_RESP);
	CHECK_INT(f->pkts[0], 1);
	CHECK_INT(f->pkts[1], 1);
	CHECK(f->handshake_seen);
	CHECK_INT(flow_table_stats(t)->active, 1);
	flow_table_destroy(t);
}

static void test_who_opened(void)
{
	struct flow_table *t = make(16);
	enum flow_dir dir;
	bool created;
	/* first packet seen is the SYN-ACK: the receiver opened */
	struct packet sa = pkt(2, 25, 1, 41000, TCP_SYN | TCP_ACK, 0, 1);
	struct flow *f = flow_table_packet(t, &sa, &dir, &created);
	CHECK_INT(f->orig_p, 41000);
	CHECK_INT(dir, FLOW_DIR_RESP);
	/* mid-stream, server speaks first: the mail port side is the responder */
	struct packet mid = pkt(2, 587, 1, 42000, TCP_ACK, 30, 2);
	f = flow_table_packet(t, &mid, &dir, &created);
	CHECK_INT(f->orig_p, 42000);
	CHECK_INT(f->resp_p, 587);
	CHECK_INT(dir, FLOW_DIR_RESP);
	/* mid-stream, two high ports: the first sender is taken as the opener */
	struct packet hi = pkt(3, 50001, 4, 8240, TCP_ACK, 10, 3);
	f = flow_table_packet(t, &hi, &dir, &created);
	CHECK_INT(f->orig_p, 50001);
	flow_table_destroy(t);
}

static void test_bound_and_eviction_order(void)
{
	/* max_flows flows fit; one more evicts, embryonic ones first. */
	const uint32_t max = 8;
	struct flow_table *t = make(max);
	enum flow_dir dir;
	bool created;
	/* flow 0 established (payload), flows 1..7 embryonic (SYN only) */
	struct packet p0 = pkt(1, 1000, 2, 25, TCP_ACK, 100, 1);
	flow_table_packet(t, &p0, &dir, &created);
	for (uint16_t i = 1; i < max; i++) {
		struct packet p = pkt(1, (uint16_t)(1000 + i), 2, 25, TCP_SYN, 0, 1 + i);
		flow_table_packet(t, &p, &dir, &created);
	}
	CHECK_INT(flow_table_stats(t)->active, max);
	CHECK_INT(ended[FLOW_END_EVICTED], 0);
	struct packet extra = pkt(1, 2000, 2, 25, TCP_SYN, 0, 100);
	flow_table_packet(t, &extra, &dir, &created);
	CHECK_INT(flow_table_stats(t)->active, max);
	CHECK_INT(ended[FLOW_END_EVICTED], 1);
	CHECK_INT(last_ended.orig_p, 1001); /* the oldest embryonic, not the established one */
	CHECK_INT(flow_table_stats(t)->evicted_embryonic, 1);
	/* the established flow is still found */
	struct packet again = pkt(2, 25, 1, 1000, TCP_ACK, 10, 101);
	flow_table_packet(t, &again, &dir, &created);
	CHECK(!created);
	flow_table_destroy(t);
}

static void test_eviction_prefers_closed_flows(void)
{
	/* No embryonic flow left: a closed one (RST seen) goes before the least
	 * recently active established one, which may still be a live session. */
	const uint32_t max = 4;
	struct flow_table *t = make(max);
	enum flow_dir dir;
	bool created;
	struct packet old = pkt(1, 1000, 2, 25, TCP_ACK, 100, 1);   /* established, idle longest */
	flow_table_packet(t, &old, &dir, &created);
	struct packet c1 = pkt(1, 1001, 2, 25, TCP_ACK, 100, 2);
	flow_table_packet(t, &c1, &dir, &created);
	struct packet rst = pkt(2, 25, 1, 1001, TCP_RST, 0, 3);     /* 1001 is closing now */
	flow_table_packet(t, &rst, &dir, &created);
	for (uint16_t i = 2; i < max; i++) {
		struct packet p = pkt(1, (uint16_t)(1000 + i), 2, 25, TCP_ACK, 100, 3 + i);
		flow_table_packet(t, &p, &dir, &created);
	}
	CHECK_INT(flow_table_stats(t)->active, max);
	struct packet extra = pkt(1, 2000, 2, 25, TCP_SYN, 0, 100);
	flow_table_packet(t, &extra, &dir, &created);
	CHECK_INT(ended[FLOW_END_EVICTED], 1);
	CHECK_INT(last_ended.orig_p, 1001);
	CHECK_INT(flow_table_stats(t)->evicted_embryonic, 0);
	/* Nothing embryonic or closing left but the new SYN: the SYN goes next,
	 * then the established flow idle longest. */
	struct packet extra2 = pkt(1, 2001, 2, 25, TCP_ACK, 10, 101);
	flow_table_packet(t, &extra2, &dir, &created);
	CHECK_INT(last_ended.orig_p, 2000);
	struct packet extra3 = pkt(1, 2002, 2, 25, TCP_ACK, 10, 102);
	flow_table_packet(t, &extra3, &dir, &created);
	CHECK_INT(ended[FLOW_END_EVICTED], 3);
	CHECK_INT(last_ended.orig_p, 1000);
	flow_table_destroy(t);
}

static void test_expiry_in_packet_time(void)
{
	struct flow_table *t = make(16);
	enum flow_dir dir;
	bool created;
	struct packet est = pkt(1, 1000, 2, 25, TCP_ACK, 10, 1000000);
	flow_table_packet(t, &est, &dir, &created);
	struct packet syn = pkt(1, 1001, 2, 25, TCP_SYN, 0, 1000000);
	flow_table_packet(t, &syn, &dir, &created);
	flow_table_expire(t, 1000000 + 30000000 - 1);
	CHECK_INT(flow_table_stats(t)->active, 2);
	flow_table_expire(t, 1000000 + 30000000);   /* embryonic timeout */
	CHECK_INT(flow_table_stats(t)->active, 1);
	CHECK_INT(ended[FLOW_END_IDLE], 1);
	flow_table_expire(t, 1000000 + 300000000);  /* idle timeout */
	CHECK_INT(flow_table_stats(t)->active, 0);
	CHECK_INT(ended[FLOW_END_IDLE], 2);
	flow_table_destroy(t);
}

static void test_fin_rst_and_reuse(void)
{
	struct flow_table *t = make(16);
	enum flow_dir dir;
	bool created;
	struct packet a = pkt(1, 1000, 2, 25, TCP_ACK | TCP_FIN, 0, 10);
	struct packet b = pkt(2, 25, 1, 1000, TCP_ACK | TCP_FIN, 0, 11);
	flow_table_packet(t, &a, &dir, &created);
	flow_table_packet(t, &b, &dir, &created);
	flow_table_expire(t, 11 + 5000000 - 1);
	CHECK_INT(flow_table_stats(t)->active, 1);
	flow_table_expire(t, 11 + 5000000);
	CHECK_INT(ended[FLOW_END_CLOSED], 1);
	/* RST closes too; a new SYN on a closing 5-tuple starts a new flow */
	struct packet r = pkt(1, 1002, 2, 25, TCP_RST, 0, 20);
	flow_table_packet(t, &r, &dir, &created);
	struct packet syn = pkt(1, 1002, 2, 25, TCP_SYN, 0, 21);
	flow_table_packet(t, &syn, &dir, &created);
	CHECK(created);
	CHECK_INT(ended[FLOW_END_REUSED], 1);
	flow_table_end_all(t, FLOW_END_SHUTDOWN);
	CHECK_INT(ended[FLOW_END_SHUTDOWN], 1);
	CHECK_INT(flow_table_stats(t)->active, 0);
	flow_table_destroy(t);
}

static void test_reopen_after_rst_not_taken(void)
{
	/* The user judged a RST not taken by its receiver (RFC 5961): the flow
	 * goes back among the established, with their timeout. */
	struct flow_table *t = make(16);
	enum flow_dir dir;
	bool created;
	struct packet d = pkt(1, 1000, 2, 25, TCP_ACK, 10, 10);
	struct packet r = pkt(1, 1000, 2, 25, TCP_RST, 0, 20);
	struct flow *f = flow_table_packet(t, &d, &dir, &created);
	flow_table_packet(t, &r, &dir, &created);
	flow_table_reopen(t, f);
	flow_table_expire(t, 20 + 5000000);
	CHECK_INT(flow_table_stats(t)->active, 1);
	flow_table_expire(t, 20 + 300000000);
	CHECK_INT(ended[FLOW_END_IDLE], 1);
	/* FIN from both sides is a close that reopening does not undo */
	struct packet a = pkt(1, 1001, 2, 25, TCP_ACK | TCP_FIN, 0, 400000000);
	struct packet b = pkt(2, 25, 1, 1001, TCP_ACK | TCP_FIN, 0, 400000001);
	f = flow_table_packet(t, &a, &dir, &created);
	flow_table_packet(t, &b, &dir, &created);
	flow_table_reopen(t, f);
	flow_table_expire(t, 400000001 + 5000000);
	CHECK_INT(ended[FLOW_END_CLOSED], 1);
	flow_table_destroy(t);
}

static void test_find_and_end(void)
{
	/* find() accounts nothing; end() ends through the callback, and the
	 * next packet of the 5-tuple opens a new flow. */
	struct flow_table *t = make(16);
	enum flow_dir dir;
	bool created;
	struct packet d = pkt(1, 1000, 2, 25, TCP_ACK, 10, 10);
	struct packet sa = pkt(2, 25, 1, 1000, TCP_SYN | TCP_ACK, 0, 20);
	CHECK(flow_table_find(t, &d, &dir) == NULL);
	struct flow *f = flow_table_packet(t, &d, &dir, &created);
	CHECK(flow_table_find(t, &sa, &dir) == f);
	CHECK_INT(dir, FLOW_DIR_RESP);
	CHECK_INT(f->pkts[1], 0);
	flow_table_end(t, f, FLOW_END_REUSED);
	CHECK_INT(ended[FLOW_END_REUSED], 1);
	CHECK_INT(last_ended.bytes[0], 10);
	CHECK(flow_table_find(t, &sa, &dir) == NULL);
	f = flow_table_packet(t, &sa, &dir, &created);
	CHECK(created);
	CHECK_INT(f->orig_p, 1000); /* the SYN-ACK's receiver opened it */
	CHECK_INT(flow_table_stats(t)->active, 1);
	flow_table_destroy(t);
}

static void test_time_going_back(void)
{
	/* One packet stamped ten days ahead, then packet time back where it
	 * was (a clock stepped back, a damaged record): expiry goes on for
	 * the flows behind it, and that flow itself ends one timeout after
	 * expiry first saw the time back, or after its last packet in the
	 * time that did come. */
	struct flow_table *t = make(16);
	enum flow_dir dir;
	bool created;
	const uint64_t T = 1000000000000ull, S = 1000000;
	struct packet b = pkt(1, 1000, 2, 25, TCP_ACK, 10, T + 10ull * 86400 * S);
	struct packet c = pkt(1, 1001, 2, 25, TCP_ACK, 10, T);
	struct packet d = pkt(1, 1002, 2, 25, TCP_ACK, 10, T);
	flow_table_packet(t, &b, &dir, &created);
	flow_table_packet(t, &c, &dir, &created);
	flow_table_packet(t, &d, &dir, &created);
	flow_table_expire(t, T + 300 * S);
	CHECK_INT(ended[FLOW_END_IDLE], 2);             /* c and d: nothing in their way */
	CHECK_INT(flow_table_stats(t)->active, 1);
	flow_table_expire(t, T + 600 * S - 1);
	CHECK_INT(flow_table_stats(t)->active, 1);
	flow_table_expire(t, T + 600 * S);              /* b: idle since time was seen back */
	CHECK_INT(ended[FLOW_END_IDLE], 3);
	CHECK_INT(last_ended.orig_p, 1000);
	CHECK_INT(last_ended.last_us, T + 10ull * 86400 * S); /* its last packet, as stamped */
	/* a flow with a time ahead that goes on in the time that came is
	 * active: it ends one timeout after its last packet */
	b.ts_us = T + 1000 * S + 10ull * 86400 * S;
	flow_table_packet(t, &b, &dir, &created);
	b.ts_us = T + 1000 * S;
	flow_table_packet(t, &b, &dir, &created);
	c.ts_us = T + 1100 * S;
	flow_table_packet(t, &c, &dir, &created);
	flow_table_expire(t, T + 1300 * S - 1);
	CHECK_INT(flow_table_stats(t)->active, 2);
	flow_table_expire(t, T + 1300 * S);
	CHECK_INT(flow_table_stats(t)->active, 1);
	CHECK_INT(last_ended.orig_p, 1000);
	flow_table_expire(t, T + 1400 * S);
	CHECK_INT(flow_table_stats(t)->active, 0);
	flow_table_destroy(t);
}

static void test_many_flows_recycle(void)
{
	/* 10x the table size through a small table: slots recycle, the index
	 * stays in range and nothing leaks (ASan). */
	struct flow_table *t = make(64);
	enum flow_dir dir;
	bool created;
	for (uint32_t i = 0; i < 640; i++) {
		struct packet p = pkt((uint8_t)(i >> 8), (uint16_t)(1024 + i), 2, 25, TCP_SYN, 0, i);
		struct flow *f = flow_table_packet(t, &p, &dir, &created);
		CHECK(created);
		CHECK(flow_table_index(t, f) < 64);
	}
	CHECK_INT(flow_table_stats(t)->ended_evicted, 640 - 64);
	CHECK_INT(flow_table_stats(t)->peak_active, 64);
	flow_table_destroy(t);
}

static void test_lazy_order_still_expires_on_time(void)
{
	/* With a 1 s slack a flow active since it was placed is not moved per
	 * packet, but expiry looks at its real last packet: it outlives a flow
	 * placed after it and ends exactly at its own idle timeout. */
	memset(ended, 0, sizeof ended);
	struct flow_table_config cfg = { 16, 30000000, 300000000, 5000000, 1000000 };
	struct flow_table *t = flow_table_create(&cfg, on_end, NULL);
	enum flow_dir dir;
	bool created;
	struct packet a1 = pkt(1, 1000, 2, 25, TCP_ACK, 10, 0);
	struct packet b1 = pkt(1, 1001, 2, 25, TCP_ACK, 10, 200000);
	struct packet a2 = pkt(2, 25, 1, 1000, TCP_ACK, 10, 500000); /* A: not moved */
	flow_table_packet(t, &a1, &dir, &created);
	flow_table_packet(t, &b1, &dir, &created);
	flow_table_packet(t, &a2, &dir, &created);
	flow_table_expire(t, 300000000 + 200000);
	CHECK_INT(ended[FLOW_END_IDLE], 1);
	CHECK_INT(last_ended.orig_p, 1001);            /* B, though A is first in line */
	flow_table_expire(t, 300000000 + 500000 - 1);
	CHECK_INT(flow_table_stats(t)->active, 1);      /* A: not before its time */
	flow_table_expire(t, 300000000 + 500000);
	CHECK_INT(ended[FLOW_END_IDLE], 2);
	CHECK_INT(last_ended.orig_p, 1000);
	flow_table_destroy(t);
}

static void test_ipv6_key(void)
{
	struct flow_table *t = make(4);
	enum flow_dir dir;
	bool created;
	struct packet p = pkt(1, 1000, 2, 25, TCP_SYN, 0, 1);
	p.v6 = true;
	flow_table_packet(t, &p, &dir, &created);
	struct packet q = pkt(1, 1000, 2, 25, TCP_SYN, 0, 1); /* same bytes, IPv4 */
	flow_table_packet(t, &q, &dir, &created);
	CHECK(created); /* different address family, different flow */
	CHECK_INT(flow_table_stats(t)->active, 2);
	flow_table_destroy(t);
}

int main(void)
{
	RUN(test_both_directions_one_flow);
	RUN(test_who_opened);
	RUN(test_bound_and_eviction_order);
	RUN(test_eviction_prefers_closed_flows);
	RUN(test_expiry_in_packet_time);
	RUN(test_fin_rst_and_reuse);
	RUN(test_reopen_after_rst_not_taken);
	RUN(test_find_and_end);
	RUN(test_time_going_back);
	RUN(test_many_flows_recycle);
	RUN(test_lazy_order_still_expires_on_time);
	RUN(test_ipv6_key);
	CHECK(flow_is_server_port(25) && flow_is_server_port(587) && !flow_is_server_port(40000));
	return TEST_EXIT();
}

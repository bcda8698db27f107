/* test-flow.c — sensor/flow.c: both directions, who opened, bounds and
 * eviction order, expiry in packet time, port reuse, ending on request,
 * IPv6 addresses kept apart from the flows. */
#include "testlib.h"

#include "flow.h"

static int ended[8];
static struct flow last_ended;
static struct flow_endpoints last_ended_ends;

/* ctx: NULL, or where the table's pointer is, to read the ended flow's
 * addresses */
static void on_end(void *ctx, struct flow *f, uint32_t idx, enum flow_end_reason why)
{
	(void)idx;
	ended[why]++;
	last_ended = *f;
	if (ctx)
		flow_table_endpoints(*(struct flow_table **)ctx, f, &last_ended_ends);
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
	a.vlan = 4095; /* the highest 802.1Q VID: the flow's field is 12 bits */
	struct flow *f = flow_table_packet(t, &a, &dir, &created);
	CHECK(created);
	CHECK_INT(dir, FLOW_DIR_ORIG);
	CHECK_INT(f->orig_p, 40000);
	CHECK_INT(f->vlan, 4095);
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

/* An IPv6 packet of the 2001:db8::/32 documentation prefix: client
 * 2001:db8::c:<n> port 40000 + (n & 0x3fff), server 2001:db8::25 port 25.
 * n's bytes sit at 12-15, past the 4 bytes an IPv4 address takes. */
static struct packet pkt6(uint32_t n, bool from_client, uint8_t flags, uint64_t ts)
{
	uint8_t c[16] = { 0x20, 0x01, 0x0d, 0xb8, [11] = 0x0c };
	uint8_t s[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 0x25 };
	c[12] = (uint8_t)(n >> 24), c[13] = (uint8_t)(n >> 16);
	c[14] = (uint8_t)(n >> 8), c[15] = (uint8_t)n;
	uint16_t cp = (uint16_t)(40000 + (n & 0x3fff));
	struct packet p = from_client ? pkt(0, cp, 0, 25, flags, 0, ts) :
			  pkt(0, 25, 0, cp, flags, 0, ts);
	p.v6 = true;
	memcpy(p.src, from_client ? c : s, 16);
	memcpy(p.dst, from_client ? s : c, 16);
	return p;
}

/* Flow f has the ends of packet p, p sent by its opener. */
static bool ends_of_packet(struct flow_table *t, const struct flow *f, const struct packet *p)
{
	struct flow_endpoints e;
	flow_table_endpoints(t, f, &e);
	return e.v6 == p->v6 && memcmp(e.orig_h, p->src, 16) == 0 &&
	       memcmp(e.resp_h, p->dst, 16) == 0 && e.orig_p == p->sport && e.resp_p == p->dport;
}

static void test_ipv6_addresses_apart(void)
{
	/* Each IPv6 flow finds its own pair of addresses, in both directions,
	 * while pairs are given back and taken again in between; the flows'
	 * pairs come back to the pool when they end (expiry, eviction, the
	 * user, shutdown), and the pool is reused before it grows. */
	static struct flow_table *t;
	memset(ended, 0, sizeof ended);
	struct flow_table_config cfg = { 64, 30000000, 300000000, 5000000, 0 };
	t = flow_table_create(&cfg, on_end, &t);
	enum flow_dir dir;
	bool created;
	struct flow *f[40];
	for (uint32_t i = 0; i < 40; i++) {
		struct packet p = pkt6(i * 0x01010101u, true, TCP_SYN, 1000 + i);
		f[i] = flow_table_packet(t, &p, &dir, &created);
		CHECK(created);
	}
	CHECK_INT(flow_table_stats(t)->v6_active, 40);
	CHECK_INT(flow_table_stats(t)->v6_made, 40);
	/* every other one ends: its pair goes back, and new flows take them */
	for (uint32_t i = 0; i < 40; i += 2)
		flow_table_end(t, f[i], FLOW_END_REUSED);
	CHECK_INT(flow_table_stats(t)->v6_active, 20);
	for (uint32_t i = 0; i < 40; i += 2) {
		struct packet p = pkt6(1000 + i, true, TCP_SYN, 2000 + i);
		f[i] = flow_table_packet(t, &p, &dir, &created);
		CHECK(created);
	}
	CHECK_INT(flow_table_stats(t)->v6_active, 40);
	CHECK_INT(flow_table_stats(t)->v6_made, 40);  /* no pair made while one was free */
	for (uint32_t i = 0; i < 40; i++) {
		uint32_t n = i % 2 ? i * 0x01010101u : 1000 + i;
		struct packet q = pkt6(n, true, TCP_ACK, 3000);
		CHECK(ends_of_packet(t, f[i], &q));
		struct packet r = pkt6(n, false, TCP_ACK, 3000);
		CHECK(flow_table_packet(t, &r, &dir, &created) == f[i]);
		CHECK(!created);
		CHECK_INT(dir, FLOW_DIR_RESP);
	}
	/* the end callback still reads the ended flow's addresses */
	struct packet q = pkt6(7 * 0x01010101u, true, TCP_ACK, 3000);
	flow_table_end(t, f[7], FLOW_END_REUSED);
	CHECK(memcmp(last_ended_ends.orig_h, q.src, 16) == 0);
	CHECK(memcmp(last_ended_ends.resp_h, q.dst, 16) == 0);
	flow_table_expire(t, 3000 + 300000000);
	CHECK_INT(flow_table_stats(t)->active, 0);
	CHECK_INT(flow_table_stats(t)->v6_active, 0);
	/* a table full of IPv6 flows, each new one evicting: the pool never
	 * holds more than the table */
	for (uint32_t i = 0; i < 640; i++) {
		struct packet p = pkt6(5000 + i, true, TCP_SYN, 400000000ull + i);
		flow_table_packet(t, &p, &dir, &created);
	}
	CHECK_INT(flow_table_stats(t)->v6_active, 64);
	CHECK_INT(flow_table_stats(t)->v6_made, 64);
	flow_table_end_all(t, FLOW_END_SHUTDOWN);
	CHECK_INT(flow_table_stats(t)->v6_active, 0);
	flow_table_destroy(t);
}

static void test_ipv6_key(void)
{
	/* An IPv6 flow and an IPv4 one whose addresses have the same bytes
	 * (the IPv6 ones 10.0.0.1 and 10.0.0.2 followed by zeros) are two
	 * flows, each with its own ends, and each packet finds its own. */
	struct flow_table *t = make(4);
	enum flow_dir dir;
	bool created;
	struct packet p = pkt(1, 1000, 2, 25, TCP_SYN, 0, 1);
	p.v6 = true;
	struct flow *f6 = flow_table_packet(t, &p, &dir, &created);
	struct packet q = pkt(1, 1000, 2, 25, TCP_SYN, 0, 1); /* same bytes, IPv4 */
	struct flow *f4 = flow_table_packet(t, &q, &dir, &created);
	CHECK(created); /* different address family, different flow */
	CHECK(f4 != f6);
	CHECK_INT(flow_table_stats(t)->active, 2);
	CHECK_INT(flow_table_stats(t)->v6_active, 1);
	CHECK(ends_of_packet(t, f6, &p));
	CHECK(ends_of_packet(t, f4, &q));
	struct packet r6 = pkt(2, 25, 1, 1000, TCP_SYN | TCP_ACK, 0, 2);
	r6.v6 = true;
	struct packet r4 = pkt(2, 25, 1, 1000, TCP_SYN | TCP_ACK, 0, 2);
	CHECK(flow_table_packet(t, &r6, &dir, &created) == f6);
	CHECK_INT(dir, FLOW_DIR_RESP);
	CHECK(flow_table_packet(t, &r4, &dir, &created) == f4);
	CHECK_INT(dir, FLOW_DIR_RESP);
	CHECK_INT(f6->pkts[1], 1);
	CHECK_INT(f4->pkts[1], 1);
	/* an IPv4 flow's ends: its 4 bytes, then zeros */
	struct flow_endpoints e;
	flow_table_endpoints(t, f4, &e);
	CHECK(!e.v6);
	CHECK(e.orig_h[0] == 10 && e.orig_h[3] == 1 && e.resp_h[3] == 2);
	flow_table_end(t, f6, FLOW_END_REUSED);
	CHECK_INT(flow_table_stats(t)->v6_active, 0);
	CHECK(flow_table_find(t, &r6, &dir) == NULL);
	CHECK(flow_table_find(t, &r4, &dir) == f4);
	flow_table_destroy(t);

	/* The same in a table of one flow, whose one chain every packet is
	 * matched against: the key is compared whole, not only its hash. A
	 * packet that another flow's key does not match makes a new flow (and
	 * evicts the other). */
	t = make(1);
	f6 = flow_table_packet(t, &p, &dir, &created);
	CHECK(flow_table_find(t, &r4, &dir) == NULL);
	f4 = flow_table_packet(t, &q, &dir, &created);
	CHECK(created);
	CHECK(ends_of_packet(t, f4, &q));
	/* two IPv6 clients on the same port that differ only in their last
	 * bytes */
	struct packet a = pkt6(0x5, true, TCP_SYN, 3), b = pkt6(0x4005, true, TCP_SYN, 3);
	struct packet ra = pkt6(0x5, false, TCP_ACK, 4), rb = pkt6(0x4005, false, TCP_ACK, 4);
	CHECK(a.sport == b.sport);
	struct flow *fa = flow_table_packet(t, &a, &dir, &created);
	CHECK(ends_of_packet(t, fa, &a));
	CHECK(flow_table_find(t, &rb, &dir) == NULL);
	struct flow *fb = flow_table_packet(t, &b, &dir, &created);
	CHECK(created);
	CHECK(ends_of_packet(t, fb, &b));
	CHECK(flow_table_find(t, &ra, &dir) == NULL);
	CHECK(flow_table_find(t, &rb, &dir) == fb);
	CHECK_INT(flow_table_stats(t)->v6_active, 1);
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
	RUN(test_ipv6_addresses_apart);
	CHECK(flow_is_server_port(25) && flow_is_server_port(587) && !flow_is_server_port(40000));
	return TEST_EXIT();
}

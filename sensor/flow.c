/* flow.c — bounded bidirectional flow table; see flow.h for the contract.
 *
 * Layout: one array of struct flow (calloc'd, so untouched slots cost no
 * resident memory), a power-of-two bucket array of chain heads, and three
 * doubly linked lists ordered by last activity — embryonic, established and
 * closing — each with its own timeout. Links are indexes + 1 so that 0 means
 * "none" and calloc'd memory is a valid empty state.
 *
 * IPv6 flows' addresses live in a pool of pairs beside the array, taken
 * when the flow is made and given back when it ends. The pool has room for
 * max_flows pairs (so taking one never fails: no more pairs are out than
 * flows), is calloc'd as the array is, and is used densely: pairs are made
 * in order and the last one given back is the next one taken, so only as
 * many pairs as IPv6 flows were ever open at once are touched, not one per
 * slot of the array. */
#include "flow.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <xxhash.h>

enum flow_list { LIST_EMBRYONIC, LIST_ESTABLISHED, LIST_CLOSING, LIST_COUNT };
_Static_assert(LIST_COUNT <= 4, "a list's number fits struct flow's 2 bits");
_Static_assert(sizeof(struct flow) == 88, "a flow is 88 bytes (flow.h)");

struct flow_list_head {
	uint32_t head, tail; /* index + 1 */
};

/* An IPv6 flow's addresses. A pair given back holds, in its first 4 bytes,
 * the next free pair (index + 1). */
struct v6_pair {
	uint8_t orig[16], resp[16];
};

struct flow_table {
	struct flow_table_config cfg;
	flow_end_fn on_end;
	void *ctx;
	struct flow *flows;
	uint32_t *buckets;      /* index + 1 of the first flow in the chain */
	uint32_t bucket_mask;
	uint32_t high_water;    /* slots [0, high_water) have been used once */
	uint32_t free_head;     /* recycled slots, chained through next */
	struct v6_pair *pairs;  /* max_flows pairs; [0, stats.v6_made) used once */
	uint32_t pairs_free;    /* index + 1 of the pair given back last */
	struct flow_list_head lists[LIST_COUNT];
	uint64_t seed;          /* random per process: chains cannot be aimed at */
	uint32_t serial;        /* wraps (flow.h) */
	struct flow_table_stats stats;
};

bool flow_is_mail_port(uint16_t port)
{
	return port == 25 || port == 465 || port == 587 || port == 2525;
}

bool flow_is_server_port(uint16_t port)
{
	return flow_is_mail_port(port) || port < 1024;
}

static struct flow *at(struct flow_table *t, uint32_t link)
{
	return link ? &t->flows[link - 1] : NULL;
}

static uint32_t link_of(const struct flow_table *t, const struct flow *f)
{
	return (uint32_t)(f - t->flows) + 1;
}

uint32_t flow_table_index(const struct flow_table *t, const struct flow *f)
{
	return (uint32_t)(f - t->flows);
}

/* Flow f's addresses: 4 bytes each for IPv4, 16 for IPv6. */
static const uint8_t *orig_of(const struct flow_table *t, const struct flow *f)
{
	return f->v6 ? t->pairs[f->addr.v6_pair].orig : f->addr.v4[0];
}

static const uint8_t *resp_of(const struct flow_table *t, const struct flow *f)
{
	return f->v6 ? t->pairs[f->addr.v6_pair].resp : f->addr.v4[1];
}

void flow_table_endpoints(const struct flow_table *t, const struct flow *f,
			  struct flow_endpoints *out)
{
	size_t n = f->v6 ? 16 : 4;
	memset(out, 0, sizeof *out);
	memcpy(out->orig_h, orig_of(t, f), n);
	memcpy(out->resp_h, resp_of(t, f), n);
	out->orig_p = f->orig_p;
	out->resp_p = f->resp_p;
	out->v6 = f->v6;
}

/* A pair for a new IPv6 flow: the one given back last, else the next never
 * used. There is always one: at most max_flows flows hold one. */
static uint32_t pair_take(struct flow_table *t)
{
	uint32_t i;
	if (t->pairs_free) {
		i = t->pairs_free - 1;
		memcpy(&t->pairs_free, t->pairs[i].orig, sizeof t->pairs_free);
	} else {
		i = (uint32_t)t->stats.v6_made++;
	}
	t->stats.v6_active++;
	return i;
}

static void pair_give(struct flow_table *t, uint32_t i)
{
	memcpy(t->pairs[i].orig, &t->pairs_free, sizeof t->pairs_free);
	t->pairs_free = i + 1;
	t->stats.v6_active--;
}

static uint64_t timeout_of(const struct flow_table *t, uint8_t list)
{
	switch ((enum flow_list)list) {
	case LIST_EMBRYONIC: return t->cfg.embryonic_timeout_us;
	case LIST_ESTABLISHED: return t->cfg.idle_timeout_us;
	case LIST_CLOSING: return t->cfg.closing_timeout_us;
	case LIST_COUNT: break;
	}
	return t->cfg.idle_timeout_us;
}

static void list_unlink(struct flow_table *t, struct flow *f)
{
	struct flow_list_head *l = &t->lists[f->list];
	if (f->prev)
		at(t, f->prev)->next = f->next;
	else
		l->head = f->next;
	if (f->next)
		at(t, f->next)->prev = f->prev;
	else
		l->tail = f->prev;
	f->prev = f->next = 0;
}

/* Put f at the tail of `list`, active at `placed_us` (never after the time
 * it is done at: see flow_table_expire). */
static void list_append(struct flow_table *t, struct flow *f, uint8_t list, uint64_t placed_us)
{
	struct flow_list_head *l = &t->lists[list];
	uint32_t me = link_of(t, f);
	f->list = list;
	f->placed_us = placed_us;
	f->next = 0;
	f->prev = l->tail;
	if (l->tail)
		at(t, l->tail)->next = me;
	else
		l->head = me;
	l->tail = me;
}

struct flow_table *flow_table_create(const struct flow_table_config *cfg,
				     flow_end_fn on_end, void *ctx)
{
	if (cfg->max_flows == 0 || cfg->max_flows > (1u << 30)) {
		errno = EINVAL;
		return NULL;
	}
	struct flow_table *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	t->cfg = *cfg;
	t->on_end = on_end;
	t->ctx = ctx;
	uint32_t nb = 1;
	while (nb < cfg->max_flows)
		nb <<= 1;
	t->bucket_mask = nb - 1;
	t->flows = calloc(cfg->max_flows, sizeof *t->flows);
	t->buckets = calloc(nb, sizeof *t->buckets);
	t->pairs = calloc(cfg->max_flows, sizeof *t->pairs);
	if (!t->flows || !t->buckets || !t->pairs) {
		flow_table_destroy(t);
		errno = ENOMEM;
		return NULL;
	}
	if (getrandom(&t->seed, sizeof t->seed, 0) != sizeof t->seed)
		t->seed = (uint64_t)(uintptr_t)t ^ 0x9e3779b97f4a7c15ull;
	return t;
}

void flow_table_destroy(struct flow_table *t)
{
	if (!t)
		return;
	free(t->flows);
	free(t->buckets);
	free(t->pairs);
	free(t);
}

/* The bucket of a connection, the same from either end: its two endpoints
 * hashed in a canonical order (the lower address, then port, first). */
struct hkey {
	uint8_t a[16], b[16];
	uint16_t pa, pb;
	uint32_t v6;          /* and no padding: hashed as bytes */
};

static uint32_t bucket_of(const struct flow_table *t, bool v6, const uint8_t *h1, uint16_t p1,
			  const uint8_t *h2, uint16_t p2)
{
	struct hkey k;
	memset(&k, 0, sizeof k);
	size_t n = v6 ? 16 : 4;
	int c = memcmp(h1, h2, n);
	if (c > 0 || (c == 0 && p1 > p2)) {
		const uint8_t *h = h1;
		uint16_t p = p1;
		h1 = h2, p1 = p2, h2 = h, p2 = p;
	}
	memcpy(k.a, h1, n);
	memcpy(k.b, h2, n);
	k.pa = p1;
	k.pb = p2;
	k.v6 = v6;
	return (uint32_t)XXH3_64bits_withSeed(&k, sizeof k, t->seed) & t->bucket_mask;
}

static uint32_t bucket_of_flow(const struct flow_table *t, const struct flow *f)
{
	return bucket_of(t, f->v6, orig_of(t, f), f->orig_p, resp_of(t, f), f->resp_p);
}

static uint32_t bucket_of_packet(const struct flow_table *t, const struct packet *p)
{
	return bucket_of(t, p->v6, p->src, p->sport, p->dst, p->dport);
}

static void chain_remove(struct flow_table *t, struct flow *f)
{
	uint32_t *pp = &t->buckets[bucket_of_flow(t, f)];
	uint32_t me = link_of(t, f);
	while (*pp && *pp != me)
		pp = &at(t, *pp)->hnext;
	if (*pp)
		*pp = f->hnext;
	f->hnext = 0;
}

static void end_flow(struct flow_table *t, struct flow *f, enum flow_end_reason why)
{
	if (t->on_end)
		t->on_end(t->ctx, f, flow_table_index(t, f), why);
	switch (why) {
	case FLOW_END_CLOSED: t->stats.ended_closed++; break;
	case FLOW_END_IDLE: t->stats.ended_idle++; break;
	case FLOW_END_EVICTED:
		t->stats.ended_evicted++;
		if (f->list == LIST_EMBRYONIC)
			t->stats.evicted_embryonic++;
		break;
	case FLOW_END_REUSED: t->stats.ended_reused++; break;
	case FLOW_END_SHUTDOWN: t->stats.ended_shutdown++; break;
	}
	chain_remove(t, f);
	list_unlink(t, f);
	if (f->v6)
		pair_give(t, f->addr.v6_pair);
	f->next = t->free_head; /* the free list reuses the list link */
	t->free_head = link_of(t, f);
	t->stats.active--;
}

/* The oldest embryonic flow first: a SYN flood must not push out live
 * sessions. Then the oldest closing one: both FINs or a RST were seen, its
 * session has already been written, and only late retransmissions are lost.
 * An established flow, the least recently active, only when neither is left. */
static void evict_one(struct flow_table *t)
{
	static const uint8_t order[] = { LIST_EMBRYONIC, LIST_CLOSING, LIST_ESTABLISHED };
	_Static_assert(sizeof order == LIST_COUNT, "every list is tried");
	for (size_t i = 0; i < sizeof order; i++) {
		struct flow *victim = at(t, t->lists[order[i]].head);
		if (victim) {
			end_flow(t, victim, FLOW_END_EVICTED);
			return;
		}
	}
}

static struct flow *alloc_slot(struct flow_table *t)
{
	if (t->stats.active >= t->cfg.max_flows)
		evict_one(t);
	struct flow *f;
	if (t->free_head) {
		f = at(t, t->free_head);
		t->free_head = f->next;
	} else {
		f = &t->flows[t->high_water++];
	}
	memset(f, 0, sizeof *f);
	return f;
}

/* Who opened the connection? The SYN sender; the SYN-ACK receiver; else the
 * side that is not on a server port; else the sender of the first packet. */
static bool src_is_orig(const struct packet *p)
{
	if ((p->flags & (TCP_SYN | TCP_ACK)) == TCP_SYN)
		return true;
	if ((p->flags & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK))
		return false;
	bool s = flow_is_server_port(p->sport), d = flow_is_server_port(p->dport);
	if (s != d)
		return d;
	if (s && d)
		return p->sport > p->dport; /* both low: the higher one is the client */
	return true;
}

static struct flow *create_flow(struct flow_table *t, const struct packet *p, uint32_t bucket)
{
	struct flow *f = alloc_slot(t);
	/* Eviction may have emptied our bucket's chain head: re-read it below. */
	f->v6 = p->v6;
	f->vlan = p->vlan;
	f->serial = ++t->serial;
	f->first_us = f->last_us = p->ts_us;
	bool so = src_is_orig(p);
	uint8_t *o = f->addr.v4[0], *r = f->addr.v4[1];
	size_t n = 4;
	if (p->v6) {
		f->addr.v6_pair = pair_take(t);
		o = t->pairs[f->addr.v6_pair].orig;
		r = t->pairs[f->addr.v6_pair].resp;
		n = 16;
	}
	memcpy(o, so ? p->src : p->dst, n);
	memcpy(r, so ? p->dst : p->src, n);
	f->orig_p = so ? p->sport : p->dport;
	f->resp_p = so ? p->dport : p->sport;
	f->hnext = t->buckets[bucket];
	t->buckets[bucket] = link_of(t, f);
	list_append(t, f, LIST_EMBRYONIC, p->ts_us);
	t->stats.active++;
	t->stats.created++;
	if (t->stats.active > t->stats.peak_active)
		t->stats.peak_active = t->stats.active;
	return f;
}

/* Whether flow f's addresses are o and r (of f's family): all 16 bytes of
 * an IPv6 address, which are only read once the ports have matched. */
static bool addrs_are(const struct flow_table *t, const struct flow *f, const uint8_t *o,
		      const uint8_t *r)
{
	if (!f->v6)
		return memcmp(o, f->addr.v4[0], 4) == 0 && memcmp(r, f->addr.v4[1], 4) == 0;
	const struct v6_pair *a = &t->pairs[f->addr.v6_pair];
	return memcmp(o, a->orig, 16) == 0 && memcmp(r, a->resp, 16) == 0;
}

/* The flow of packet p in the chain, and the packet's direction in it. */
static struct flow *find(struct flow_table *t, const struct packet *p, uint32_t bucket,
			 enum flow_dir *dir)
{
	for (struct flow *f = at(t, t->buckets[bucket]); f; f = at(t, f->hnext)) {
		if (f->v6 != p->v6)
			continue;
		if (p->sport == f->orig_p && p->dport == f->resp_p &&
		    addrs_are(t, f, p->src, p->dst)) {
			*dir = FLOW_DIR_ORIG;
			return f;
		}
		if (p->sport == f->resp_p && p->dport == f->orig_p &&
		    addrs_are(t, f, p->dst, p->src)) {
			*dir = FLOW_DIR_RESP;
			return f;
		}
	}
	return NULL;
}

struct flow *flow_table_packet(struct flow_table *t, const struct packet *p,
			       enum flow_dir *dir, bool *created)
{
	uint32_t bucket = bucket_of_packet(t, p);
	enum flow_dir d = FLOW_DIR_ORIG;
	struct flow *f = find(t, p, bucket, &d);
	*created = false;
	if (f && f->list == LIST_CLOSING && (p->flags & (TCP_SYN | TCP_ACK)) == TCP_SYN) {
		end_flow(t, f, FLOW_END_REUSED); /* the port pair is being reused */
		f = NULL;
	}
	if (!f) {
		f = create_flow(t, p, bucket);
		*created = true;
		/* As find() will match the flow's later packets (orig first): not
		 * from src_is_orig(), which differs for a connection to itself. */
		d = p->sport == f->orig_p && memcmp(p->src, orig_of(t, f), p->v6 ? 16 : 4) == 0 ?
		    FLOW_DIR_ORIG : FLOW_DIR_RESP;
	}
	*dir = d;
	f->last_us = p->ts_us > f->last_us ? p->ts_us : f->last_us;
	f->pkts[d]++;
	f->bytes[d] += p->payload_wire_len;
	f->flags_seen[d] |= p->flags;
	if (p->flags & TCP_SYN)
		f->handshake_seen = true;

	uint8_t list = f->list;
	if (list == LIST_EMBRYONIC && p->payload_wire_len > 0)
		list = LIST_ESTABLISHED;
	if ((p->flags & TCP_RST) ||
	    ((f->flags_seen[0] & TCP_FIN) && (f->flags_seen[1] & TCP_FIN)))
		list = LIST_CLOSING;
	/* Move to the tail of its list: lists stay ordered by last activity,
	 * to within lru_slack_us (see flow.h). A packet from before the flow
	 * was placed (time went back) places it again at its own time. */
	uint64_t now = p->ts_us;
	if (list != f->list || now < f->placed_us || now - f->placed_us > t->cfg.lru_slack_us ||
	    t->cfg.lru_slack_us == 0) {
		list_unlink(t, f);
		list_append(t, f, list, now);
	}
	return f;
}

struct flow *flow_table_find(struct flow_table *t, const struct packet *p, enum flow_dir *dir)
{
	return find(t, p, bucket_of_packet(t, p), dir);
}

void flow_table_end(struct flow_table *t, struct flow *f, enum flow_end_reason why)
{
	end_flow(t, f, why);
}

void flow_table_reopen(struct flow_table *t, struct flow *f)
{
	if (f->list != LIST_CLOSING ||
	    ((f->flags_seen[0] & TCP_FIN) && (f->flags_seen[1] & TCP_FIN)))
		return;
	list_unlink(t, f);
	/* placed_us: the time of the RST, which placed it among the closing */
	list_append(t, f, f->bytes[0] || f->bytes[1] ? LIST_ESTABLISHED : LIST_EMBRYONIC,
		    f->placed_us);
}

void flow_table_expire(struct flow_table *t, uint64_t now_us)
{
	for (uint8_t l = 0; l < LIST_COUNT; l++) {
		uint64_t to = timeout_of(t, l);
		struct flow *f;
		while ((f = at(t, t->lists[l].head))) {
			if (f->placed_us > now_us) {
				/* Placed at a time that has not come. A little ahead
				 * is packets out of order (merged queues or ports):
				 * its time comes soon, and placed earlier it would
				 * end early (a closing flow before its last ACK).
				 * Further ahead, packet time went back (a clock
				 * stepped back, a packet stamped ahead): waiting for
				 * that time would stall every flow behind this one,
				 * so it is idle from now on instead. Placed at now_us,
				 * it ends this loop when it comes round. */
				if (f->placed_us - now_us <= FLOW_CLOCK_SKEW_US)
					break;
				list_unlink(t, f);
				list_append(t, f, l, now_us);
				continue;
			}
			if (f->placed_us + to > now_us)
				break;
			if (f->last_us + to > now_us && f->last_us <= now_us + FLOW_CLOCK_SKEW_US) {
				/* active since it was placed: placed again, and ends
				 * this loop when it comes round. A last_us a little
				 * after now_us is activity too: the packets of a
				 * capture merged from several queues or ports are out
				 * of order by milliseconds, and an established flow
				 * must not end for that. One further ahead is of a time
				 * that has not come, and shows no activity. */
				list_unlink(t, f);
				list_append(t, f, l, f->last_us < now_us ? f->last_us : now_us);
				continue;
			}
			end_flow(t, f, l == LIST_CLOSING ? FLOW_END_CLOSED : FLOW_END_IDLE);
		}
	}
}

void flow_table_end_all(struct flow_table *t, enum flow_end_reason why)
{
	/* Oldest first in each list, so the user sees ends in a stable order. */
	for (uint8_t l = 0; l < LIST_COUNT; l++) {
		struct flow *f;
		while ((f = at(t, t->lists[l].head)))
			end_flow(t, f, why);
	}
}

const struct flow_table_stats *flow_table_stats(const struct flow_table *t)
{
	return &t->stats;
}

const char *flow_end_reason_name(enum flow_end_reason why)
{
	switch (why) {
	case FLOW_END_CLOSED: return "closed";
	case FLOW_END_IDLE: return "idle";
	case FLOW_END_EVICTED: return "evicted";
	case FLOW_END_REUSED: return "reused";
	case FLOW_END_SHUTDOWN: return "shutdown";
	}
	return "?";
}

/* classify.c — nDPI 4.2 wrapper; see classify.h for the contract. */
#include "classify.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>

#include <ndpi/ndpi_api.h>

struct classifier {
	struct ndpi_detection_module_struct *ndpi;
	struct ndpi_flow_struct **pool; /* allocated on first need, then recycled */
	uint32_t max, allocated, nfree;
	uint32_t *free_list;            /* nfree pool numbers, 1-based */
	struct classify_stats stats;
};

struct classifier *classifier_create(uint32_t max_active)
{
	struct classifier *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->max = max_active;
	c->pool = calloc(max_active ? max_active : 1, sizeof *c->pool);
	c->free_list = calloc(max_active ? max_active : 1, sizeof *c->free_list);
	/* Tor host lists and libgcrypt (QUIC) are of no use for mail flows. */
	c->ndpi = ndpi_init_detection_module(ndpi_dont_load_tor_hosts | ndpi_dont_init_libgcrypt);
	if (!c->pool || !c->free_list || !c->ndpi) {
		classifier_destroy(c);
		errno = ENOMEM;
		return NULL;
	}
	NDPI_PROTOCOL_BITMASK all;
	NDPI_BITMASK_SET_ALL(all);
	ndpi_set_protocol_detection_bitmask2(c->ndpi, &all);
	ndpi_finalize_initialization(c->ndpi);
	return c;
}

void classifier_destroy(struct classifier *c)
{
	if (!c)
		return;
	for (uint32_t i = 0; i < c->allocated; i++) {
		ndpi_free_flow_data(c->pool[i]);
		free(c->pool[i]);
	}
	free(c->pool);
	free(c->free_list);
	if (c->ndpi)
		ndpi_exit_detection_module(c->ndpi);
	free(c);
}

/* The nDPI flow that state s borrows. */
static struct ndpi_flow_struct *nf_of(const struct classifier *c, const struct classify_state *s)
{
	return c->pool[s->nf - 1];
}

/* Lend a cleared nDPI flow: its number, 0 when the pool is exhausted. */
static uint32_t nf_get(struct classifier *c)
{
	uint32_t n;
	if (c->nfree) {
		n = c->free_list[--c->nfree];
	} else if (c->allocated < c->max) {
		struct ndpi_flow_struct *nf = malloc(SIZEOF_FLOW_STRUCT);
		if (!nf)
			return 0;
		c->pool[c->allocated++] = nf;
		n = c->allocated;
	} else {
		c->stats.pool_exhausted++;
		return 0;
	}
	memset(c->pool[n - 1], 0, SIZEOF_FLOW_STRUCT);
	if (++c->stats.pool_in_use > c->stats.pool_peak)
		c->stats.pool_peak = c->stats.pool_in_use;
	return n;
}

static void nf_put(struct classifier *c, struct classify_state *s)
{
	if (!s->nf)
		return;
	/* What nDPI allocated inside the flow; it leaves the pointers dangling,
	 * so clear them or the next free (or classifier_destroy) frees twice. */
	struct ndpi_flow_struct *nf = nf_of(c, s);
	ndpi_free_flow_data(nf);
	memset(nf, 0, SIZEOF_FLOW_STRUCT);
	c->free_list[c->nfree++] = s->nf;
	s->nf = 0;
	c->stats.pool_in_use--;
}

static bool mail_port(uint16_t port)
{
	return port == 25 || port == 465 || port == 587 || port == 2525;
}

static bool is(const struct classify_state *s, uint16_t proto)
{
	return s->master == proto || s->app == proto;
}

static enum classify_verdict verdict_of(const struct classify_state *s, const struct packet *p)
{
	if (is(s, NDPI_PROTOCOL_MAIL_SMTP))
		return CLASSIFY_SMTP;
	if (is(s, NDPI_PROTOCOL_MAIL_SMTPS))
		return CLASSIFY_TLS;
	/* TLS is mail only on a mail port: HTTPS let in by a wide filter is not. */
	if (is(s, NDPI_PROTOCOL_TLS))
		return mail_port(p->sport) || mail_port(p->dport) ? CLASSIFY_TLS : CLASSIFY_OTHER;
	if (s->master == NDPI_PROTOCOL_HTTP_CONNECT)
		return CLASSIFY_TUNNEL;
	if (s->master == NDPI_PROTOCOL_UNKNOWN && s->app == NDPI_PROTOCOL_UNKNOWN)
		return CLASSIFY_UNKNOWN;
	return CLASSIFY_OTHER;
}

static enum classify_verdict port_fallback(const struct packet *p)
{
	if (p->sport == 465 || p->dport == 465)
		return CLASSIFY_TLS;
	if (mail_port(p->sport) || mail_port(p->dport))
		return CLASSIFY_SMTP;
	return CLASSIFY_UNKNOWN;
}

static void count(struct classifier *c, enum classify_verdict v)
{
	switch (v) {
	case CLASSIFY_SMTP: c->stats.flows_smtp++; break;
	case CLASSIFY_TLS: c->stats.flows_tls++; break;
	case CLASSIFY_TUNNEL: c->stats.flows_tunnel++; break;
	case CLASSIFY_OTHER: c->stats.flows_other++; break;
	case CLASSIFY_UNKNOWN: c->stats.flows_unknown++; break;
	case CLASSIFY_UNDECIDED: break;
	}
}

static enum classify_verdict give_up(struct classifier *c, struct classify_state *s,
				     const struct packet *p)
{
	uint8_t guessed = 0;
	ndpi_protocol r = ndpi_detection_giveup(c->ndpi, nf_of(c, s), 1, &guessed);
	s->master = r.master_protocol;
	s->app = r.app_protocol;
	enum classify_verdict v = verdict_of(s, p);
	/* nDPI's guess is by port: trust it only for the mail ports. */
	if (v == CLASSIFY_OTHER && guessed)
		v = CLASSIFY_UNKNOWN;
	return v;
}

enum classify_verdict classify_packet(struct classifier *c, struct classify_state *s,
				      const struct packet *p)
{
	if (s->verdict != CLASSIFY_UNDECIDED)
		return s->verdict;
	/* nDPI decides on payload; packets without any (the handshake, bare
	 * ACKs: half the packets of a bulk transfer) would only make it hold
	 * its state longer. Its state is taken at the first payload byte, so
	 * a flow waiting for its banner costs nothing here. */
	if (p->payload_len == 0)
		return CLASSIFY_UNDECIDED;
	if (!s->nf) {
		s->nf = nf_get(c);
		if (!s->nf) {
			s->verdict = port_fallback(p);
			count(c, s->verdict);
			return s->verdict;
		}
	}
	ndpi_protocol r = ndpi_detection_process_packet(c->ndpi, nf_of(c, s), p->l3,
							(unsigned short)(p->l3_len > 0xffff ? 0xffff : p->l3_len),
							p->ts_us / 1000);
	s->master = r.master_protocol;
	s->app = r.app_protocol;
	s->pkts++;
	enum classify_verdict v = verdict_of(s, p);
	if (v == CLASSIFY_UNKNOWN && s->pkts >= CLASSIFY_PKTS_MAX)
		v = give_up(c, s, p);
	if (v == CLASSIFY_UNKNOWN && s->pkts < CLASSIFY_PKTS_MAX)
		return CLASSIFY_UNDECIDED;
	s->verdict = (uint8_t)v;
	count(c, v);
	nf_put(c, s);
	return v;
}

/* nDPI's guess from its list of networks ("Google" for 173.194.0.0/16):
 * what it would add as the application protocol (SMTP.Google). IPv4 only,
 * as in nDPI 4.2. */
static uint16_t network_guess(struct classifier *c, const struct packet *p)
{
	if (p->v6)
		return NDPI_PROTOCOL_UNKNOWN;
	struct in_addr a;
	memcpy(&a.s_addr, p->src, 4);
	uint16_t id = ndpi_network_ptree_match(c->ndpi, &a);
	if (id == NDPI_PROTOCOL_UNKNOWN) {
		memcpy(&a.s_addr, p->dst, 4);
		id = ndpi_network_ptree_match(c->ndpi, &a);
	}
	return id;
}

void classify_settle(struct classifier *c, struct classify_state *s, enum classify_verdict v,
		     const struct packet *p)
{
	if (s->verdict != CLASSIFY_UNDECIDED)
		return;
	if (v == CLASSIFY_SMTP) {
		uint16_t net = network_guess(c, p);
		s->master = NDPI_PROTOCOL_MAIL_SMTP;
		s->app = net != NDPI_PROTOCOL_UNKNOWN ? net : NDPI_PROTOCOL_MAIL_SMTP;
	}
	s->verdict = (uint8_t)v;
	count(c, v);
	c->stats.settled_by_parser++;
	nf_put(c, s);
}

void classify_release(struct classifier *c, struct classify_state *s)
{
	if (s->nf && s->verdict == CLASSIFY_UNDECIDED && s->pkts > 0) {
		/* Flow ended undecided: ask nDPI for its best guess, for the summary. */
		uint8_t guessed = 0;
		ndpi_protocol r = ndpi_detection_giveup(c->ndpi, nf_of(c, s), 1, &guessed);
		s->master = r.master_protocol;
		s->app = r.app_protocol;
	}
	nf_put(c, s);
}

void classify_proto_name(struct classifier *c, const struct classify_state *s, char *out,
			 size_t outsz)
{
	ndpi_protocol r = { .master_protocol = s->master, .app_protocol = s->app };
	if (s->master == s->app)
		r.master_protocol = NDPI_PROTOCOL_UNKNOWN;
	ndpi_protocol2name(c->ndpi, r, out, (u_int)outsz);
}

const struct classify_stats *classify_stats(const struct classifier *c)
{
	return &c->stats;
}

const char *classify_verdict_name(enum classify_verdict v)
{
	switch (v) {
	case CLASSIFY_UNDECIDED: return "undecided";
	case CLASSIFY_SMTP: return "smtp";
	case CLASSIFY_TLS: return "tls";
	case CLASSIFY_TUNNEL: return "tunnel";
	case CLASSIFY_OTHER: return "other";
	case CLASSIFY_UNKNOWN: return "unknown";
	}
	return "?";
}

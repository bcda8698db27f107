/* classify.h — which application protocol a TCP flow carries (nDPI 4.2).
 *
 * Every new flow's payload packets go through nDPI until nDPI decides, gives
 * up after CLASSIFY_PKTS_MAX packets, or the caller settles the flow with
 * what it proved itself. nDPI's per-flow state (688 bytes in 4.2, and 2 KB
 * more that its TLS dissector allocates on the first payload) is taken from a
 * capped pool at the first payload byte and returned at once after the
 * decision, so memory follows flows-being-classified, not flows. When the
 * pool is empty a flow is classified by its ports (counted).
 *
 * struct classify_state lives in caller memory; classify_release() must be
 * called when the flow ends. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "decode.h"

#define CLASSIFY_PKTS_MAX 32          /* packets given to nDPI before giving up */
#define CLASSIFY_POOL_DEFAULT 16384u  /* flows under classification at once */

enum classify_verdict {
	CLASSIFY_UNDECIDED = 0,
	CLASSIFY_SMTP,      /* clear-text SMTP: parse it */
	CLASSIFY_TLS,       /* SMTPS, or TLS from the first byte: count, don't parse */
	CLASSIFY_TUNNEL,    /* HTTP CONNECT: an open proxy; SMTP may follow the 200 */
	CLASSIFY_OTHER,     /* something else: release early */
	CLASSIFY_UNKNOWN,   /* nDPI gave up */
};

struct classify_state {
	uint32_t nf;                 /* 1 + the pool's nDPI flow lent while undecided,
	                              * 0 none (a number, not a pointer: 12 B a flow) */
	uint16_t master, app;        /* nDPI protocol ids once known */
	uint8_t pkts;
	uint8_t verdict;             /* enum classify_verdict */
};

struct classify_stats {
	uint64_t flows_smtp, flows_tls, flows_tunnel, flows_other, flows_unknown;
	uint64_t pool_exhausted;     /* flows that could not get nDPI state */
	uint64_t settled_by_parser;  /* of the verdicts, given by classify_settle() */
	uint64_t pool_in_use, pool_peak;
};

struct classifier;

/* Returns NULL on failure (nDPI could not initialise; errno set). */
struct classifier *classifier_create(uint32_t max_active);
void classifier_destroy(struct classifier *c);

/* Give one packet of an undecided flow to nDPI. Returns the verdict, which
 * stays in s->verdict; later calls on a decided flow return it at once.
 * When no nDPI state can be had, the verdict falls back to the ports. */
enum classify_verdict classify_packet(struct classifier *c, struct classify_state *s,
				      const struct packet *p);

/* The caller proved the protocol itself (the SMTP parser saw a greeting
 * and a mail command, what nDPI's SMTP dissector waits for too): take
 * verdict v, named as nDPI would name it (its protocol id, and the owner of
 * the addresses of packet p when nDPI knows their network: SMTP.Google), and
 * give nDPI's state back now, if the flow had any. A decided flow is left as
 * it is. */
void classify_settle(struct classifier *c, struct classify_state *s, enum classify_verdict v,
		     const struct packet *p);

/* Stop classifying (e.g. the flow ended): nDPI state back to the pool. The
 * verdict and protocol ids are kept. */
void classify_release(struct classifier *c, struct classify_state *s);

/* nDPI's name for the flow's protocol ("SMTP", "SMTPS", "TLS.Google",
 * "HTTP_Connect", "Unknown"). */
void classify_proto_name(struct classifier *c, const struct classify_state *s, char *out,
			 size_t outsz);

const struct classify_stats *classify_stats(const struct classifier *c);
const char *classify_verdict_name(enum classify_verdict v);

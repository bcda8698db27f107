/* flow.h — bounded bidirectional TCP flow table.
 *
 * Flows are keyed by the 5-tuple (either direction finds the same flow) and
 * live in one array allocated at create time: looking up, creating and ending
 * flows never allocates. Memory is bounded by max_flows; when the table is
 * full the oldest flow is evicted, embryonic flows (no payload seen, e.g. a
 * SYN flood) first, then closed ones (FIN both ways or RST), established
 * ones last, and the eviction is counted.
 * Time is packet time: flows expire by idle timeout as packets advance the
 * clock (flow_table_expire), and soon after FIN from both sides or RST.
 * Packet time may go back (a clock stepped back after a packet stamped
 * ahead): a flow last placed at a time that has not come is idle from the
 * time expiry sees instead, so that expiry never waits behind it.
 *
 * Ownership: the table owns every struct flow. A flow pointer stays valid
 * until the end callback for that flow returns. Each flow has a stable index
 * in [0, max_flows) so a user can keep per-flow state in a parallel array.
 * A flow's addresses are the table's too: flow_table_endpoints() copies
 * them out (an IPv6 flow keeps its two addresses in the table, not in the
 * struct). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "decode.h"

enum flow_dir { FLOW_DIR_ORIG = 0, FLOW_DIR_RESP = 1 };

enum flow_end_reason {
	FLOW_END_CLOSED,    /* FIN from both sides or RST, then the linger passed */
	FLOW_END_IDLE,      /* no packet for the idle timeout */
	FLOW_END_EVICTED,   /* the table was full */
	FLOW_END_REUSED,    /* a new connection on the 5-tuple: a SYN on a closing
	                     * flow, or one the user saw confirmed (flow_table_end) */
	FLOW_END_SHUTDOWN,  /* end of capture or exit */
};

/* 88 bytes (pahole -C flow), one per flow open at once: the array of them
 * is the table's memory. Narrowed where what a field holds allows: the
 * addresses (below), the serial to 32 bits, flags to bits. Times stay
 * 64-bit µs (reported exactly; placed_us can lie days behind last_us once
 * packet time has gone back, see flow_table_expire), and so do the counters:
 * one bulk flow at a million packets a second passes 2^32 packets in 72
 * minutes, and its record would show a capped count. */
struct flow {
	/* Read-only outside flow.c. orig is the side that opened the connection
	 * (sent the SYN), or our best guess when the handshake was not seen.
	 * With the addresses (private: flow_table_endpoints()) they are the key,
	 * matched against a packet in either direction; the first 18 bytes
	 * hold what a lookup reads. */
	uint16_t orig_p, resp_p;

	/* Private to flow.c. An IPv4 flow holds its two addresses; an IPv6
	 * one holds the number of its pair of addresses in the table's pool:
	 * 8 B in every flow instead of 32, and 32 B in the pool for each IPv6
	 * flow open (a tenth of the flows in the benchmark). */
	union {
		uint8_t v4[2][4];  /* orig, resp */
		uint32_t v6_pair;  /* index into the table's pool */
	} addr;
	uint32_t hnext;            /* index + 1; 0 = none */

	/* Read-only outside flow.c. */
	unsigned vlan : 12;        /* the 802.1Q VID: 12 bits (decode.c masks it) */
	bool v6 : 1;
	bool handshake_seen : 1;
	unsigned list : 2;         /* private: enum flow_list in flow.c */
	uint8_t flags_seen[2];     /* OR of TCP flags per direction */

	/* Private to flow.c. */
	uint32_t prev, next;       /* index + 1; 0 = none */

	/* Read-only outside flow.c. */
	uint32_t serial;           /* creation order in this process, modulo 2^32:
	                            * with first_us and the 5-tuple it makes the
	                            * uid, which two flows then share only if they
	                            * began at the same packet time on the same
	                            * 5-tuple, 2^32 flows apart */
	uint64_t first_us, last_us;
	uint64_t placed_us;        /* private: last_us when last put at its list's tail */
	uint64_t pkts[2];          /* [FLOW_DIR_ORIG], [FLOW_DIR_RESP] */
	uint64_t bytes[2];         /* TCP payload bytes on the wire */
};

/* A flow's ends as plain values, for what is written about it. */
struct flow_endpoints {
	uint8_t orig_h[16], resp_h[16];  /* IPv4 in the first 4 bytes, rest zero */
	uint16_t orig_p, resp_p;
	bool v6;
};

struct flow_table_config {
	uint32_t max_flows;            /* > 0 */
	uint64_t embryonic_timeout_us; /* no payload seen yet */
	uint64_t idle_timeout_us;      /* established */
	uint64_t closing_timeout_us;   /* after FIN both ways or RST */
	/* A flow is moved to the tail of its list (kept in last-activity
	 * order) only when it has been idle-ordered this long out of date:
	 * moving it on every packet touches two other flows' cache lines per
	 * packet. Expiry rechecks the real last packet time, so flows still end
	 * on time; eviction picks the oldest within this slack. 0: exact. */
	uint64_t lru_slack_us;
};

#define FLOW_DEFAULT_MAX          262144u
#define FLOW_DEFAULT_EMBRYONIC_US (30ull * 1000000)
#define FLOW_DEFAULT_IDLE_US      (300ull * 1000000)  /* RFC 5321 §4.5.3.2: 5 min */
#define FLOW_DEFAULT_CLOSING_US   (5ull * 1000000)
#define FLOW_DEFAULT_LRU_SLACK_US (1ull * 1000000)
#define FLOW_CLOCK_SKEW_US        (10ull * 1000000)   /* packet times out of order by
                                                       * this much still show activity */

struct flow_table_stats {
	uint64_t active;
	uint64_t created;
	uint64_t ended_closed, ended_idle, ended_evicted, ended_reused, ended_shutdown;
	uint64_t evicted_embryonic;    /* of ended_evicted */
	uint64_t peak_active;
	uint64_t v6_active;            /* IPv6 flows: their address pairs in the pool */
	uint64_t v6_made;              /* pairs ever used, the pool's touched part:
	                                * the peak of v6_active */
};

/* Called once for every flow that ends, with its index; the flow is freed
 * when the callback returns. */
typedef void (*flow_end_fn)(void *ctx, struct flow *f, uint32_t idx,
			    enum flow_end_reason why);

struct flow_table;

/* Returns NULL if memory for max_flows cannot be had (errno set). */
struct flow_table *flow_table_create(const struct flow_table_config *cfg,
				     flow_end_fn on_end, void *ctx);

/* Frees the table without calling the end callback: call
 * flow_table_end_all() first if the user must see the ends. NULL is fine. */
void flow_table_destroy(struct flow_table *t);

/* Find or create the flow of TCP packet p and account the packet to it (time,
 * counters, FIN/RST state). *dir receives the packet's direction, *created
 * whether the flow is new. May end other flows (eviction, port reuse) through
 * the callback before returning. Never returns NULL. */
struct flow *flow_table_packet(struct flow_table *t, const struct packet *p,
			       enum flow_dir *dir, bool *created);

uint32_t flow_table_index(const struct flow_table *t, const struct flow *f);

/* Flow f's addresses, ports and family, copied into *out. */
void flow_table_endpoints(const struct flow_table *t, const struct flow *f,
			  struct flow_endpoints *out);

/* The flow of packet p, if there is one, and p's direction in it; nothing
 * is accounted or created. */
struct flow *flow_table_find(struct flow_table *t, const struct packet *p, enum flow_dir *dir);

/* End flow f now, through the end callback, for a reason the user judged
 * (FLOW_END_REUSED: a handshake confirmed a new connection on its 5-tuple).
 * f is invalid once this returns. */
void flow_table_end(struct flow_table *t, struct flow *f, enum flow_end_reason why);

/* The RST that made f a closing flow was not taken by its receiver (the
 * user judged its sequence number, RFC 5961 §3): f is an established flow
 * again, ended by the idle timeout rather than the closing linger. A flow
 * with FIN from both sides stays closing. */
void flow_table_reopen(struct flow_table *t, struct flow *f);

/* End flows whose timeout passed at packet time now_us. */
void flow_table_expire(struct flow_table *t, uint64_t now_us);

/* End every flow (end of capture, exit). */
void flow_table_end_all(struct flow_table *t, enum flow_end_reason why);

const struct flow_table_stats *flow_table_stats(const struct flow_table *t);

const char *flow_end_reason_name(enum flow_end_reason why);

/* True for the ports mail servers listen on (and, as a fallback guess, any
 * port below 1024): used to guess the connection's opener when the
 * handshake was not captured. */
bool flow_is_server_port(uint16_t port);

/* The mail ports: 25, 465, 587, 2525. */
bool flow_is_mail_port(uint16_t port);

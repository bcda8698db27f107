/* tracker.h — from decoded TCP packets to SMTP transactions.
 *
 * Glues the stages for every flow: the flow table finds the flow, nDPI names
 * its protocol, reassembly orders each direction, and the SMTP parser turns
 * clear-text mail sessions into transactions. Encrypted mail sessions (SMTPS,
 * or after STARTTLS) are only counted; other protocols are released after
 * classification. Results leave through struct tracker_events; every pointer
 * in an event is borrowed until the callback returns.
 *
 * Memory is bounded by the config: flows, SMTP sessions, message parsers,
 * their header workspaces, nDPI states and out-of-order buffers each come
 * from a capped pool, all sized up front or grown once and recycled, so
 * packets never allocate; so do the buffers that carry cut SMTP lines
 * (smtp.h). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "classify.h"
#include "decode.h"
#include "flow.h"
#include "reasm.h"
#include "record.h"
#include "smtp.h"

/* SMTP sessions parsed at once. Each costs about 0.4 KB with its strings
 * (168 B of session, the addresses and names its record needs, its share of
 * line buffers and message parsers). 49,152 keeps the sensor under 64 MB
 * when a span port carries more SMTP sessions at once than that, every one
 * mid-transaction (tests/bench: 100k at once peak at 61 MB; with all parsed
 * 85 MB), and is ten times what large mail servers accept at once (Postfix
 * runs 100 smtpd processes by default, Exchange takes 5,000 connections).
 * Sessions over it are still accounted as flows, and counted
 * (sessions_over, Prometheus' RelaywatchSessionsNotParsed). */
#define TRACKER_SESSIONS_DEFAULT 49152u
/* Messages under way at once (DATA to the end of the transaction): a few
 * hundred bytes each in the body, so one per session is affordable. */
#define TRACKER_MESSAGES_DEFAULT 65536u
/* Header blocks parsed at once (message.h workspaces, about 36 KB each):
 * most end in the segment they began in, so a few serve many sessions. */
#define TRACKER_WORKSPACES_DEFAULT 128u

/* Packet time further ahead than this of the last time seen moves expiry
 * only once a second time confirms it (tracker.c expire()). */
#define TRACKER_TIME_JUMP_US (60ull * 1000000)

/* TCP checksums (--checksums). A segment with a bad one is counted in its
 * flow's packets and bytes and used for nothing else (no reassembly, no
 * nDPI, its flags not taken), as its receiver drops it (RFC 9293 §3.1):
 * kept, its bytes would hide the real ones sent at the same sequence
 * numbers. Verified: SYN, FIN and RST segments, and every segment of a
 * flow whose bytes are read (not yet classified, or clear-text SMTP);
 * those of flows only counted (encrypted, other protocols) are not
 * summed. A segment cut by the snap length cannot be verified: it is used. */
enum tracker_checksums {
	TRACKER_CHECKSUMS_AUTO = 0, /* verify, unless the first segments show
	                             * checksums left to the NIC (offload) */
	TRACKER_CHECKSUMS_ON,
	TRACKER_CHECKSUMS_OFF,
};

/* auto: the first TRACKER_CSUM_SAMPLE segments verified decide. If a tenth
 * or more have bad checksums (Suricata's ratio), checksums are not
 * verified from then on: the capture is made where they are left to the
 * NIC, on the sending host (its own segments: about half of those of its
 * sessions, all of them on lo), where a span port shows next to none.
 * Until then a bad segment is used while a third or more of those verified
 * so far were bad, so that a small capture made on the sending host is
 * read whole (the Zeek and nDPI captures that have such checksums never
 * fall below 3 in 7), and left out otherwise: a client's bad segment among
 * good ones (1 in 4 at worst: after the handshake, as the greeting). */
#define TRACKER_CSUM_SAMPLE     1000u
#define TRACKER_CSUM_OFF_RATIO  10u  /* off at bad * 10 >= verified */
#define TRACKER_CSUM_USED_RATIO 3u   /* while sampling: used at bad * 3 >= verified */

struct tracker_config {
	struct flow_table_config flows;
	uint32_t max_sessions;
	uint32_t max_messages;
	uint32_t max_workspaces;
	uint32_t max_classifying;
	uint32_t reasm_buffers;
	enum tracker_checksums checksums;
	/* [network] local_domains, for the recipients a transaction cannot keep
	 * (smtp_env.local_domains); NULL: not known. Must outlive the tracker. */
	const struct domain_list *local_domains;
};

void tracker_config_defaults(struct tracker_config *cfg);

/* One ended flow, for --flows. */
struct tracker_flow_summary {
	const struct flow *flow;
	const struct flow_endpoints *ends; /* its addresses and ports */
	const char *uid;
	const char *proto;         /* nDPI's name */
	enum classify_verdict verdict;
	bool tls;                  /* SMTPS or STARTTLS */
	bool parsed;               /* an SMTP parser followed it */
	unsigned transactions;
	uint64_t gaps, gap_bytes;
	enum flow_end_reason why;
};

struct tracker_events {
	/* A mail transaction ended (one per Zeek smtp.log row). */
	void (*record)(void *ctx, const struct rw_record *r);
	/* An AUTH exchange finished, in the flow with endpoints e. */
	void (*auth)(void *ctx, const struct flow_endpoints *e, const struct smtp_auth_event *a);
	/* A mail session was recognised: clear-text SMTP (tls false), or became
	 * encrypted (tls true: SMTPS, or STARTTLS accepted). A STARTTLS session
	 * reports twice. */
	void (*session)(void *ctx, const struct flow_endpoints *e, bool tls, uint64_t ts_us);
	/* A flow ended. */
	void (*flow_end)(void *ctx, const struct tracker_flow_summary *s);
	/* --checksums auto decided, once, after TRACKER_CSUM_SAMPLE segments
	 * verified of which `bad` had bad checksums: verify goes on, or not. */
	void (*checksums)(void *ctx, bool verify, uint64_t verified, uint64_t bad);
};

struct tracker_stats {
	const struct flow_table_stats *flows;
	const struct reasm_stats *reasm;
	const struct classify_stats *classify;
	const struct smtp_stats *smtp;
	uint64_t sessions_active, sessions_peak, sessions_exhausted;
	uint64_t messages_peak;
	uint64_t messages_exhausted;  /* no parser, or no workspace for the header block */
	uint64_t workspaces_in_use, workspaces_peak;
	uint64_t parts_skipped;       /* MIME part header blocks without a workspace */
	uint64_t encrypted_sessions;
	/* bound hits inside messages (sensor/message.h), summed per message */
	uint64_t msgs_headers_oversized;  /* over MESSAGE_HEADER_BYTES_MAX or _COUNT_MAX */
	uint64_t fields_truncated;        /* values cut at their bound */
	uint64_t mime_over;               /* nesting or boundary length over bound */
	uint64_t bytes_replaced;          /* undecodable bytes shown as U+FFFD */
	/* TCP checksums */
	uint64_t csum_verified;           /* segments whose checksum was summed */
	uint64_t csum_bad;                /* of them bad, and not used */
	uint64_t csum_bad_used;           /* of them bad, used: auto, while sampling */
};

struct tracker;

/* Returns NULL with a reason in err. */
struct tracker *tracker_create(const struct tracker_config *cfg, const struct tracker_events *ev,
			       void *ctx, char *err, size_t errsz);
void tracker_destroy(struct tracker *t);

/* One TCP packet (decode_packet() said DECODE_OK; p->ts_us set). */
void tracker_packet(struct tracker *t, const struct packet *p);

/* Packet time passed (a quiet live interface): expire idle flows. */
void tracker_advance(struct tracker *t, uint64_t now_us);

/* End every flow (end of capture, exit): pending transactions are reported. */
void tracker_finish(struct tracker *t);

void tracker_get_stats(const struct tracker *t, struct tracker_stats *out);

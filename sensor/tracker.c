/* tracker.c — per-flow glue; see tracker.h for the contract.
 *
 * A flow's application state:
 *
 *   GREETED --parser: a mail command--> SMTP
 *     ^  \--other payload--> UNDECIDED (nDPI from that packet on)
 *     | first payload is the server's "220"
 *   UNDECIDED --nDPI: SMTP / HTTP CONNECT--> SMTP --STARTTLS accepted--> ENCRYPTED
 *       |  |  \--parser: greeting and mail command--> SMTP
 *       |  \--nDPI: SMTPS / TLS on a mail port--> ENCRYPTED
 *       \--nDPI: other, or gave up on a non-SMTP stream--> IGNORED
 *
 * While undecided the stream is already reassembled and parsed
 * speculatively, so nothing is lost while nDPI makes up its mind (it needs the
 * banner, the first command and its reply). The parser settles SMTP itself
 * once it has seen the greeting and a mail command, which is what nDPI's SMTP
 * dissector looks for too. A session that opens the usual way (the server's
 * 220, then EHLO) is therefore settled by the parser without nDPI: nDPI's
 * state is 2.7 KB a flow from the first payload to its verdict, and on a
 * mail server's span port nearly every flow is such a session. nDPI names
 * everything else: TLS, proxies, and whatever does not greet like SMTP.
 * ENCRYPTED and IGNORED flows are only counted by the flow table. */
#include "tracker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum app_state {
	APP_UNDECIDED = 0, /* nDPI reads the payload, the parser too */
	APP_GREETED,       /* the server spoke first, "220": only the parser reads */
	APP_SMTP, APP_ENCRYPTED, APP_IGNORED
};

/* A server's first payload that opens like an SMTP greeting: "220 " or "220-"
 * (RFC 5321 4.2), or a bare "220" line. */
static bool greeting(const struct packet *p, enum flow_dir dir)
{
	return dir == FLOW_DIR_RESP && p->payload_len >= 4 && memcmp(p->payload, "220", 3) == 0 &&
	       (p->payload[3] == ' ' || p->payload[3] == '-' || p->payload[3] == '\r');
}

/* Whether checksums are verified now (see tracker.h):
 *
 *   --checksums auto: SAMPLING --TRACKER_CSUM_SAMPLE verified, under a tenth bad--> VERIFYING
 *                         \--a tenth or more bad--> OFF
 *   --checksums on: VERIFYING        --checksums off: OFF */
enum csum_state { CSUM_SAMPLING = 0, CSUM_VERIFYING, CSUM_OFF };

struct flow_ctx {
	struct reasm_dir rd[2];
	struct classify_state cls;
	uint32_t session;      /* 1 + the SMTP session's number (smtp_of), 0 none */
	uint8_t app;           /* enum app_state */
	bool tls;
	bool parsed;
	uint8_t syn_pending;   /* 1 + the direction of a SYN not yet answered, 0 none */
	uint32_t transactions;
	uint32_t syn_isn;      /* that SYN's sequence number (see end_if_reused) */
	uint32_t gaps;         /* saturates (a gap takes a segment): 64 B a flow */
	uint64_t gap_bytes;
};

/* A pool of objects created on first need and recycled. */
struct pool {
	void **items;
	uint32_t max, made, nfree;
	uint64_t in_use, peak, exhausted;
};

struct tracker {
	struct tracker_config cfg;
	struct tracker_events ev;
	void *ctx;
	struct flow_table *flows;
	struct flow_ctx *fctx;       /* parallel to the flow table's slots */
	struct classifier *cls;
	struct reasm_pool *reasm;
	struct pool sessions, messages;
	/* The sessions, side by side in one array (calloc'd: the pages of
	 * sessions never made cost nothing), made in order and recycled
	 * through the pool: no allocator header or rounding each (8 B of the
	 * 176 malloc would take for a 168-byte session), and a flow knows its
	 * session by a 32-bit number. */
	char *session_mem;
	size_t session_size;
	struct smtp_line_pool *lines;
	struct message_workspaces *workspaces; /* shared by the messages' header blocks */
	struct smtp_events smtp_ev;
	struct smtp_stats smtp_stats;
	struct smtp_env smtp_env;      /* the three above and the tracker: passed with
					* every call on a session (smtp.h) */
	uint64_t encrypted_sessions;
	uint64_t msgs_headers_oversized, fields_truncated, mime_over, bytes_replaced;
	uint64_t last_expire_us;
	bool time_jump_seen;         /* the last time was TRACKER_TIME_JUMP_US ahead */
	uint8_t csum_state;          /* enum csum_state */
	uint64_t csum_verified, csum_bad, csum_bad_used;
	uint64_t csum_sample_bad;    /* bad ones among the first TRACKER_CSUM_SAMPLE */

	/* The flow being worked on, for the SMTP and reassembly callbacks. */
	struct flow *cur_flow;
	struct flow_ctx *cur_ctx;
	enum flow_dir cur_dir;
	uint64_t now_us;
};

/* Flow c's session, NULL if none. */
static struct smtp_session *smtp_of(const struct tracker *t, const struct flow_ctx *c)
{
	return c->session ? (void *)(t->session_mem + (c->session - 1) * t->session_size) : NULL;
}

void tracker_config_defaults(struct tracker_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->flows.max_flows = FLOW_DEFAULT_MAX;
	cfg->flows.embryonic_timeout_us = FLOW_DEFAULT_EMBRYONIC_US;
	cfg->flows.idle_timeout_us = FLOW_DEFAULT_IDLE_US;
	cfg->flows.closing_timeout_us = FLOW_DEFAULT_CLOSING_US;
	cfg->flows.lru_slack_us = FLOW_DEFAULT_LRU_SLACK_US;
	cfg->max_sessions = TRACKER_SESSIONS_DEFAULT;
	cfg->max_messages = TRACKER_MESSAGES_DEFAULT;
	cfg->max_workspaces = TRACKER_WORKSPACES_DEFAULT;
	cfg->max_classifying = CLASSIFY_POOL_DEFAULT;
	cfg->reasm_buffers = REASM_POOL_DEFAULT;
	cfg->checksums = TRACKER_CHECKSUMS_AUTO;
}

static int pool_init(struct pool *p, uint32_t max)
{
	memset(p, 0, sizeof *p);
	p->max = max;
	p->items = calloc(max ? max : 1, sizeof *p->items);
	return p->items ? 0 : -ENOMEM;
}

/* Take a recycled object, or NULL with *make set when a new one may be made. */
static void *pool_take(struct pool *p, bool *make)
{
	*make = false;
	if (p->nfree) {
		p->in_use++;
		if (p->in_use > p->peak)
			p->peak = p->in_use;
		return p->items[--p->nfree];
	}
	if (p->made < p->max) {
		*make = true;
		return NULL;
	}
	p->exhausted++;
	return NULL;
}

static void pool_made(struct pool *p)
{
	p->made++;
	if (++p->in_use > p->peak)
		p->peak = p->in_use;
}

static void pool_give(struct pool *p, void *item)
{
	p->items[p->nfree++] = item;
	p->in_use--;
}

/* --- SMTP events ------------------------------------------------------- */

static void on_txn(void *ctx, const struct smtp_txn *txn)
{
	struct tracker *t = ctx;
	t->cur_ctx->transactions++;
	const struct message_info *m = txn->msg;
	if (m) {
		t->msgs_headers_oversized += m->header_bytes_over || m->header_count_over;
		t->fields_truncated += m->truncated_fields;
		t->mime_over += m->mime_depth_over + m->boundary_too_long;
		t->bytes_replaced += m->decode_replaced;
	}
	if (!t->ev.record)
		return;
	struct flow_endpoints e;
	flow_table_endpoints(t->flows, t->cur_flow, &e);
	char uid[RECORD_UID_MAX];
	record_flow_uid(t->cur_flow, &e, uid);
	struct rw_record r;
	record_build(&r, &e, uid, txn);
	t->ev.record(t->ctx, &r);
}

static void on_auth(void *ctx, const struct smtp_auth_event *a)
{
	struct tracker *t = ctx;
	if (!t->ev.auth)
		return;
	struct flow_endpoints e;
	flow_table_endpoints(t->flows, t->cur_flow, &e);
	t->ev.auth(t->ctx, &e, a);
}

static void on_starttls(void *ctx, uint64_t ts_us)
{
	struct tracker *t = ctx;
	t->cur_ctx->tls = true;
	t->encrypted_sessions++;
	if (!t->ev.session)
		return;
	struct flow_endpoints e;
	flow_table_endpoints(t->flows, t->cur_flow, &e);
	t->ev.session(t->ctx, &e, true, ts_us);
}

static struct message *msg_acquire(void *ctx)
{
	struct tracker *t = ctx;
	bool make;
	struct message *m = pool_take(&t->messages, &make);
	if (make) {
		m = message_create(t->workspaces);
		if (m)
			pool_made(&t->messages);
		else
			t->messages.exhausted++;
	}
	if (m)
		message_reset(m);
	return m;
}

static void msg_release(void *ctx, struct message *m)
{
	struct tracker *t = ctx;
	if (m) {
		message_reset(m); /* its values are freed now, not at its next use */
		pool_give(&t->messages, m);
	}
}

/* --- reassembly sink ------------------------------------------------------ */

static void sink_data(void *ctx, const uint8_t *p, uint32_t len)
{
	struct tracker *t = ctx;
	if (t->cur_ctx->session)
		smtp_feed(smtp_of(t, t->cur_ctx), &t->smtp_env, t->cur_dir == FLOW_DIR_ORIG, p, len,
			  t->now_us);
}

static void sink_gap(void *ctx, uint32_t len)
{
	struct tracker *t = ctx;
	if (t->cur_ctx->gaps < UINT32_MAX)
		t->cur_ctx->gaps++;
	t->cur_ctx->gap_bytes += len;
	if (t->cur_ctx->session)
		smtp_gap(smtp_of(t, t->cur_ctx), &t->smtp_env, t->cur_dir == FLOW_DIR_ORIG, len,
			 t->now_us);
}

/* --- sessions ------------------------------------------------------------- */

static void set_current(struct tracker *t, struct flow *f, struct flow_ctx *c, uint64_t now)
{
	t->cur_flow = f;
	t->cur_ctx = c;
	t->now_us = now;
}

/* A new session, the next of the array (pool_take said one may be made). */
static struct smtp_session *session_make(struct tracker *t)
{
	struct smtp_session *s = (void *)(t->session_mem + t->sessions.made * t->session_size);
	smtp_session_init(s);
	return s;
}

static void session_attach(struct tracker *t, struct flow_ctx *c)
{
	if (c->session)
		return;
	bool make;
	struct smtp_session *s = pool_take(&t->sessions, &make);
	if (make) {
		s = session_make(t);
		if (s)
			pool_made(&t->sessions);
		else
			t->sessions.exhausted++;
	} else if (s) {
		smtp_session_reset(s, &t->smtp_env);
	}
	if (!s) {
		c->app = APP_IGNORED; /* over the bound: counted, flow only accounted */
		return;
	}
	c->session = (uint32_t)(((char *)s - t->session_mem) / t->session_size) + 1;
	c->parsed = true;
	smtp_session_start(s, &t->smtp_env, t->cur_flow->handshake_seen);
}

/* End the parse: buffered bytes out (with gaps), pending transaction out. */
static void session_detach(struct tracker *t, struct flow *f, struct flow_ctx *c, bool flush)
{
	struct smtp_session *s = smtp_of(t, c);
	if (!s)
		return;
	struct reasm_sink sink = { sink_data, sink_gap, t };
	if (flush) {
		for (int d = 0; d < 2; d++) {
			t->cur_dir = (enum flow_dir)d;
			reasm_flush(&c->rd[d], t->reasm, &sink);
		}
		smtp_end(s, &t->smtp_env, f->last_us);
	}
	smtp_session_reset(s, &t->smtp_env); /* what it held goes now, not at its next use */
	pool_give(&t->sessions, s);
	c->session = 0;
	if (!flush)
		c->parsed = false; /* it was speculation: not SMTP after all */
}

static void report_session(struct tracker *t, struct flow *f, struct flow_ctx *c, bool tls,
			   uint64_t ts)
{
	if (tls) {
		c->tls = true;
		t->encrypted_sessions++;
	} else {
		t->smtp_stats.sessions++; /* clear-text SMTP recognised */
	}
	if (!t->ev.session)
		return;
	struct flow_endpoints e;
	flow_table_endpoints(t->flows, f, &e);
	t->ev.session(t->ctx, &e, tls, ts);
}

static void apply_verdict(struct tracker *t, struct flow *f, struct flow_ctx *c,
			  enum classify_verdict v, uint64_t ts)
{
	switch (v) {
	case CLASSIFY_UNDECIDED:
		return;
	case CLASSIFY_SMTP:
	case CLASSIFY_TUNNEL: /* an open proxy: the SMTP parser skips the CONNECT */
		c->app = APP_SMTP;
		report_session(t, f, c, false, ts);
		return;
	case CLASSIFY_TLS:
		c->app = APP_ENCRYPTED;
		session_detach(t, f, c, false);
		report_session(t, f, c, true, ts);
		return;
	case CLASSIFY_UNKNOWN:
	case CLASSIFY_OTHER:
		/* nDPI gave up, or named the flow otherwise: it guesses by port,
		 * client ports too (5001 "TargusDataspeed", 4343 "Whois-DAS").
		 * What the parser saw decides: SMTP shown, or on a mail port not
		 * yet refuted, the parse goes on (it stops by itself on garbage). */
		if ((c->session && smtp_looks_like_smtp(smtp_of(t, c))) ||
		    ((flow_is_mail_port(f->resp_p) || flow_is_mail_port(f->orig_p)) &&
		     (!c->session || !smtp_failed(smtp_of(t, c))))) {
			c->app = APP_SMTP;
			report_session(t, f, c, false, ts);
			return;
		}
		c->app = APP_IGNORED;
		session_detach(t, f, c, false);
		return;
	}
}

/* Packet p to nDPI, and its verdict applied. */
static void classify(struct tracker *t, struct flow *f, struct flow_ctx *c,
		     const struct packet *p)
{
	apply_verdict(t, f, c, classify_packet(t->cls, &c->cls, p), p->ts_us);
	/* A decision may have switched flows' contexts through callbacks. */
	set_current(t, f, c, p->ts_us);
}

/* --- flows ---------------------------------------------------------------- */

static void on_flow_end(void *ctx, struct flow *f, uint32_t idx, enum flow_end_reason why)
{
	struct tracker *t = ctx;
	struct flow_ctx *c = &t->fctx[idx];
	set_current(t, f, c, f->last_us);
	session_detach(t, f, c, true);
	classify_release(t->cls, &c->cls);
	for (int d = 0; d < 2; d++)
		reasm_dir_finish(&c->rd[d], t->reasm);
	if (t->ev.flow_end) {
		struct flow_endpoints e;
		flow_table_endpoints(t->flows, f, &e);
		char uid[RECORD_UID_MAX], proto[64];
		record_flow_uid(f, &e, uid);
		classify_proto_name(t->cls, &c->cls, proto, sizeof proto);
		struct tracker_flow_summary s = {
			.flow = f,
			.ends = &e,
			.uid = uid,
			.proto = proto,
			.verdict = (enum classify_verdict)c->cls.verdict,
			.tls = c->tls,
			.parsed = c->parsed,
			.transactions = c->transactions,
			.gaps = c->gaps,
			.gap_bytes = c->gap_bytes,
			.why = why,
		};
		t->ev.flow_end(t->ctx, &s);
	}
	memset(c, 0, sizeof *c);
}

struct tracker *tracker_create(const struct tracker_config *cfg, const struct tracker_events *ev,
			       void *ctx, char *err, size_t errsz)
{
	struct tracker *t = calloc(1, sizeof *t);
	if (!t) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	t->cfg = *cfg;
	t->ev = *ev;
	t->ctx = ctx;
	switch (cfg->checksums) {
	case TRACKER_CHECKSUMS_AUTO:
		t->csum_state = CSUM_SAMPLING;
		break;
	case TRACKER_CHECKSUMS_ON:
		t->csum_state = CSUM_VERIFYING;
		break;
	case TRACKER_CHECKSUMS_OFF:
		t->csum_state = CSUM_OFF;
		break;
	}
	t->smtp_ev = (struct smtp_events){ on_txn, on_auth, on_starttls, msg_acquire, msg_release };
	t->flows = flow_table_create(&cfg->flows, on_flow_end, t);
	if (!t->flows) {
		snprintf(err, errsz, "cannot allocate a flow table of %u flows: %s",
			 cfg->flows.max_flows, strerror(errno));
		goto out_free;
	}
	t->fctx = calloc(cfg->flows.max_flows, sizeof *t->fctx);
	t->cls = classifier_create(cfg->max_classifying);
	t->reasm = reasm_pool_create(cfg->reasm_buffers);
	/* Carry buffers are lent only while TCP has cut a line (smtp.h): two
	 * small ones per session, so that none goes without, and a whole-line
	 * one per eight sessions, far more than traffic needs (one at a time
	 * for 114k sessions in the benchmark), bounding what slow long lines
	 * can take to 128 B a session. */
	t->lines = smtp_line_pool_create(2 * cfg->max_sessions, cfg->max_sessions / 8 + 1);
	t->workspaces = message_workspaces_create(cfg->max_workspaces);
	t->smtp_env = (struct smtp_env){ &t->smtp_ev, t, &t->smtp_stats, t->lines,
					 cfg->local_domains };
	t->session_size = (smtp_session_sizeof() + 7) & ~(size_t)7;
	t->session_mem = calloc(cfg->max_sessions ? cfg->max_sessions : 1, t->session_size);
	if (!t->session_mem || !t->fctx || !t->cls || !t->reasm || !t->lines || !t->workspaces ||
	    pool_init(&t->sessions, cfg->max_sessions) < 0 ||
	    pool_init(&t->messages, cfg->max_messages) < 0) {
		snprintf(err, errsz, "cannot initialise the tracker (nDPI or memory)");
		goto out_free;
	}
	return t;

out_free:
	tracker_destroy(t);
	return NULL;
}

void tracker_destroy(struct tracker *t)
{
	if (!t)
		return;
	/* Flows still open are dropped without events: tracker_finish() reports. */
	flow_table_destroy(t->flows);
	for (uint32_t i = 0; i < t->sessions.nfree; i++)
		smtp_session_fini(t->sessions.items[i], &t->smtp_env);
	free(t->session_mem);
	for (uint32_t i = 0; i < t->messages.nfree; i++)
		message_destroy(t->messages.items[i]);
	smtp_line_pool_destroy(t->lines);
	free(t->sessions.items);
	free(t->messages.items);
	message_workspaces_destroy(t->workspaces);
	classifier_destroy(t->cls);
	reasm_pool_destroy(t->reasm);
	free(t->fctx);
	free(t);
}

static enum flow_dir other_dir(enum flow_dir d)
{
	return d == FLOW_DIR_ORIG ? FLOW_DIR_RESP : FLOW_DIR_ORIG;
}

/* Is a SYN at `seq` the one this direction's stream began with (sent
 * again, or captured out of order)? Its stream starts at most `sent`
 * bytes (all this side has sent, retransmissions included) before the next
 * byte expected. Unknown for a direction never seen sending. */
static bool syn_of_stream(const struct reasm_dir *rd, uint64_t sent, uint32_t seq)
{
	if (rd->state == REASM_UNSYNCED)
		return false;
	uint32_t start = seq + 1;
	return reasm_seq_leq(start, rd->next_seq) && rd->next_seq - start <= sent;
}

/* A SYN-ACK that acknowledges the pending SYN of its flow (syn_isn + 1)
 * proves a new connection on the 5-tuple, whose old one ended unseen (the
 * capture lost its FINs): the old flow ends as reused and the packet opens
 * a new one. The SYN alone proves nothing: a receiver answers a SYN on an
 * established connection with a challenge ACK and carries on (RFC 5961
 * §4), so a client could otherwise end its own session's parse with one
 * forged SYN. Zeek decides on the SYN (IsReuse: a new ISN); we wait for the
 * server's word. Returns true, with the SYN's ISN in *isn, if the flow was
 * ended. */
static bool end_if_reused(struct tracker *t, const struct packet *p, uint32_t *isn)
{
	enum flow_dir dir;
	struct flow *f = flow_table_find(t->flows, p, &dir);
	if (!f)
		return false;
	struct flow_ctx *c = &t->fctx[flow_table_index(t->flows, f)];
	if (c->syn_pending != 1 + other_dir(dir) || p->ack != c->syn_isn + 1)
		return false;
	/* the old connection's own SYN-ACK again: not a new connection */
	if (syn_of_stream(&c->rd[dir], f->bytes[dir], p->seq))
		return false;
	*isn = c->syn_isn;
	flow_table_end(t->flows, f, FLOW_END_REUSED);
	return true;
}

/* Is segment p to be used, as far as its checksum goes? Called only while
 * checksums are verified (not CSUM_OFF); counts, and takes auto's sample
 * (tracker.h). */
static bool checksum_ok(struct tracker *t, const struct packet *p)
{
	enum decode_csum v = decode_tcp_checksum(p);
	if (v == DECODE_CSUM_UNCHECKED)
		return true;
	bool bad = v == DECODE_CSUM_BAD;
	t->csum_verified++;
	switch ((enum csum_state)t->csum_state) {
	case CSUM_SAMPLING:
		t->csum_sample_bad += bad;
		if (t->csum_verified == TRACKER_CSUM_SAMPLE) {
			bool off = t->csum_sample_bad * TRACKER_CSUM_OFF_RATIO >= t->csum_verified;
			t->csum_state = off ? CSUM_OFF : CSUM_VERIFYING;
			if (t->ev.checksums)
				t->ev.checksums(t->ctx, !off, t->csum_verified, t->csum_sample_bad);
			if (off) {
				t->csum_bad_used += bad;
				return true;
			}
		} else if (bad && t->csum_sample_bad * TRACKER_CSUM_USED_RATIO >= t->csum_verified) {
			t->csum_bad_used++;
			return true;
		}
		break;
	case CSUM_VERIFYING:
	case CSUM_OFF:
		break;
	}
	t->csum_bad += bad;
	return !bad;
}

/* Packet p's flow, accounted, made with a new context if it is new
 * (*created, may be NULL). */
static struct flow *flow_of(struct tracker *t, const struct packet *p, enum flow_dir *dir,
			    bool *created)
{
	bool made;
	struct flow *f = flow_table_packet(t->flows, p, dir, &made);
	if (made) {
		struct flow_ctx *c = &t->fctx[flow_table_index(t->flows, f)];
		memset(c, 0, sizeof *c);
		reasm_dir_init(&c->rd[0]);
		reasm_dir_init(&c->rd[1]);
	}
	if (created)
		*created = made;
	return f;
}

/* Are the flow's bytes read (by nDPI and the parser while undecided, by
 * the parser once SMTP)? */
static bool bytes_read(const struct flow_ctx *c)
{
	return c->app == APP_UNDECIDED || c->app == APP_GREETED || c->app == APP_SMTP;
}

/* A segment not used for its bad checksum: its flow (made if need be)
 * counts its packet and bytes, and nothing else: not its SYN, FIN or RST,
 * which its receiver did not take either. */
static void account_only(struct tracker *t, const struct packet *p)
{
	struct packet q = *p;
	q.flags &= (uint8_t)~(TCP_SYN | TCP_FIN | TCP_RST);
	enum flow_dir dir;
	flow_of(t, &q, &dir, NULL);
}

/* Expiry at packet time now_us. It walks list heads only: once per second
 * of packet time is plenty. Packet time can jump (the capturing host's
 * clock stepped, a damaged or merged capture): a time further ahead than
 * TRACKER_TIME_JUMP_US is taken only once a second one confirms it, or a
 * single packet stamped days ahead would end every session under way as
 * idle; time going back a second or more expires at once, at the time
 * that came (flow_table_expire copes with flows placed after it). */
static void expire(struct tracker *t, uint64_t now_us)
{
	uint64_t last = t->last_expire_us;
	if (last && now_us > last + TRACKER_TIME_JUMP_US && !t->time_jump_seen) {
		t->time_jump_seen = true;
		return;
	}
	t->time_jump_seen = false;
	if (now_us >= last ? now_us - last < 1000000u : last - now_us < 1000000u)
		return;
	t->last_expire_us = now_us;
	flow_table_expire(t->flows, now_us);
}

void tracker_packet(struct tracker *t, const struct packet *p)
{
	/* A SYN, FIN or RST changes what the flow table and reassembly hold,
	 * of any flow: its checksum is verified before anything else (these
	 * are few and short). Other segments are, below, only where their
	 * bytes are read. */
	bool verify = t->csum_state != CSUM_OFF;
	bool control = (p->flags & (TCP_SYN | TCP_FIN | TCP_RST)) != 0;
	if (verify && control && !checksum_ok(t, p)) {
		account_only(t, p);
		expire(t, p->ts_us);
		return;
	}
	enum flow_dir dir;
	bool created;
	uint32_t reused_isn = 0;
	bool reused = (p->flags & (TCP_SYN | TCP_ACK | TCP_RST)) == (TCP_SYN | TCP_ACK) &&
		      end_if_reused(t, p, &reused_isn);
	struct flow *f = flow_of(t, p, &dir, &created);
	struct flow_ctx *c = &t->fctx[flow_table_index(t->flows, f)];
	set_current(t, f, c, p->ts_us);
	if (reused && created) {
		/* The SYN this packet answers, seen on the old flow, starts the
		 * other side's stream. */
		struct packet syn = { .ts_us = p->ts_us, .seq = reused_isn, .flags = TCP_SYN };
		struct reasm_sink sink = { sink_data, sink_gap, t };
		t->cur_dir = other_dir(dir);
		reasm_segment(&c->rd[t->cur_dir], t->reasm, &syn, &sink);
	}
	/* The segments whose bytes (and ACK) are read: by nDPI and the parser
	 * while undecided, by the parser once SMTP. Accounted above, their
	 * flags (ACK, PSH) changed nothing. */
	if (verify && !control &&
	    bytes_read(c) && !checksum_ok(t, p)) {
		expire(t, p->ts_us);
		return;
	}

	/* The handshake says where each stream starts, though the parser comes
	 * only with the first payload: without it a direction would begin at
	 * its first segment captured, and a first segment captured late or
	 * lost would be dropped as old or never missed. Until the other side
	 * has answered (an ACK or payload from it), a SYN from a side that has
	 * sent no payload yet starts its stream over: a SYN retransmitted with
	 * a new ISN replaces the first (Zeek: SYN_seq_jump). Once it has, a
	 * bare SYN with a new ISN is either forged (the receiver answers it
	 * with a challenge ACK, RFC 5961 §4, and goes on) or opens a new
	 * connection on the 5-tuple: it is kept aside, its stream untouched,
	 * until a SYN-ACK tells which (end_if_reused). */
	bool syn_aside = false;
	if (p->flags & TCP_SYN) {
		enum flow_dir peer = other_dir(dir);
		bool answered = f->bytes[peer] > 0 || (f->flags_seen[peer] & TCP_ACK);
		if (answered) {
			syn_aside = !syn_of_stream(&c->rd[dir], f->bytes[dir] - p->payload_wire_len,
						   p->seq);
			if (syn_aside && !(p->flags & (TCP_ACK | TCP_RST))) {
				c->syn_pending = (uint8_t)(1 + dir);
				c->syn_isn = p->seq;
			}
		} else if (bytes_read(c)) {
			if (f->bytes[dir] == p->payload_wire_len) {
				reasm_dir_finish(&c->rd[dir], t->reasm);
				reasm_dir_init(&c->rd[dir]);
			}
			if (!c->session && p->payload_wire_len == 0) {
				/* No payload, no parser: only the sequence number is taken. */
				struct reasm_sink sink = { sink_data, sink_gap, t };
				t->cur_dir = dir;
				reasm_segment(&c->rd[dir], t->reasm, p, &sink);
			}
		}
	}

	/* A parser from the first payload on, while undecided or once SMTP
	 * (nDPI's pool was full and the port decided). A first payload that is
	 * the server's SMTP greeting goes to the parser alone: the client's
	 * first command, in the next packet, most likely settles the flow
	 * without nDPI (nor its 2.7 KB per flow) ever being involved. */
	if ((c->app == APP_UNDECIDED || c->app == APP_SMTP) && p->payload_wire_len > 0 &&
	    !c->session && !c->parsed) {
		if (c->app == APP_UNDECIDED && greeting(p, dir))
			c->app = APP_GREETED;
		session_attach(t, c);
	}
	if (c->app == APP_UNDECIDED)
		classify(t, f, c, p);
	if (bytes_read(c) && c->session) {
		struct reasm_sink sink = { sink_data, sink_gap, t };
		/* The ACK first, as Zeek does: a hole the peer acknowledged is a
		 * gap before this packet's own payload is read. */
		if (p->flags & TCP_ACK) {
			t->cur_dir = dir == FLOW_DIR_ORIG ? FLOW_DIR_RESP : FLOW_DIR_ORIG;
			reasm_peer_ack(&c->rd[t->cur_dir], t->reasm, p->ack, &sink);
		}
		t->cur_dir = dir;
		if (c->session && !syn_aside)
			reasm_segment(&c->rd[dir], t->reasm, p, &sink);
		if (c->session && smtp_in_tls(smtp_of(t, c)) && c->app == APP_SMTP)
			c->app = APP_ENCRYPTED; /* STARTTLS: keep the session for its end */
		/* The parser saw a greeting and a mail command: that is SMTP, as
		 * sure as nDPI would say one reply later, and nDPI's state (2.7 KB
		 * with its TLS buffer) goes back now. */
		if ((c->app == APP_UNDECIDED || c->app == APP_GREETED) && c->session &&
		    smtp_looks_like_smtp(smtp_of(t, c))) {
			classify_settle(t->cls, &c->cls, CLASSIFY_SMTP, p);
			apply_verdict(t, f, c, CLASSIFY_SMTP, p->ts_us);
		} else if (c->app == APP_GREETED && p->payload_wire_len > 0 &&
			   !greeting(p, dir)) {
			/* Payload after the greeting that did not prove SMTP (an FTP
			 * "USER", a client that never speaks): nDPI from here on. It
			 * missed the greeting; its verdict, or at worst the ports,
			 * still decide, and the parser goes on reading meanwhile. */
			c->app = APP_UNDECIDED;
			classify(t, f, c, p);
		}
	}
	/* A RST off the sequence number its receiver expects is dropped by it
	 * (RFC 5961 §3): the session goes on, so a client cannot end our parse
	 * with one and carry on unseen. Past STARTTLS the stream is no longer
	 * followed and there is nothing to judge by. */
	bool rst = (p->flags & TCP_RST) != 0;
	if (rst && c->session && c->app != APP_ENCRYPTED &&
	    !reasm_rst_acceptable(&c->rd[dir], t->reasm, p->seq)) {
		rst = false;
		flow_table_reopen(t->flows, f);
	}
	/* Both sides said FIN, or one said RST: the conversation is over, the
	 * parser goes back to its pool now rather than when the flow expires. */
	if (c->session && (rst || ((f->flags_seen[0] & TCP_FIN) && (f->flags_seen[1] & TCP_FIN))))
		session_detach(t, f, c, true);
	expire(t, p->ts_us);
}

void tracker_advance(struct tracker *t, uint64_t now_us)
{
	expire(t, now_us);
}

void tracker_finish(struct tracker *t)
{
	flow_table_end_all(t->flows, FLOW_END_SHUTDOWN);
}

void tracker_get_stats(const struct tracker *t, struct tracker_stats *out)
{
	memset(out, 0, sizeof *out);
	out->flows = flow_table_stats(t->flows);
	out->reasm = reasm_stats(t->reasm);
	out->classify = classify_stats(t->cls);
	out->smtp = &t->smtp_stats;
	out->sessions_active = t->sessions.in_use;
	out->sessions_peak = t->sessions.peak;
	out->sessions_exhausted = t->sessions.exhausted;
	struct message_workspaces_stats ws;
	message_workspaces_get_stats(t->workspaces, &ws);
	out->messages_peak = t->messages.peak;
	/* without a workspace a message's headers are not parsed either */
	out->messages_exhausted = t->messages.exhausted + ws.headers_skipped;
	out->workspaces_in_use = ws.in_use;
	out->workspaces_peak = ws.peak;
	out->parts_skipped = ws.parts_skipped;
	out->encrypted_sessions = t->encrypted_sessions;
	out->msgs_headers_oversized = t->msgs_headers_oversized;
	out->fields_truncated = t->fields_truncated;
	out->mime_over = t->mime_over;
	out->bytes_replaced = t->bytes_replaced;
	out->csum_verified = t->csum_verified;
	out->csum_bad = t->csum_bad;
	out->csum_bad_used = t->csum_bad_used;
}

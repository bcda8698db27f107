/* fuzz-smtp.c — libFuzzer target: both directions of one SMTP session into
 * smtp_feed()/smtp_gap()/smtp_end(), with real message parsers from a pool
 * of one or two (as the tracker's pool) sharing one header workspace, and
 * every transaction turned into a record and JSON as relaywatch does.
 *
 * Input format (tests/fuzz/README.md; make-seeds.py writes it from pcaps):
 *
 *   byte 0   bit 0: the TCP handshake was seen; bit 1: message pool of one
 *            parser (else two); bits 2-7: seed of the split points
 *   then chunks separated by the two bytes FF FF; each chunk is
 *     ctl    bit 0: from the client (else the server)
 *            bits 1-3: a gap before the data, of gap_len[bits] bytes (0 none)
 *            bit 4: the connection ends before this chunk (smtp_end, then
 *                   the session is reset and started again: the pool path)
 *            bits 5-7: packet-time step in seconds
 *     data   the bytes of that direction
 *
 * One session is created once and made new with smtp_session_reset() for
 * every run, as the tracker's session pool does (when a session was 9 KB,
 * creating and wiping it twice per input cost a third of the time).
 *
 * Oracles: the sanitizers; the bounds of smtp.h and message.h on every
 * emitted string; the record of every transaction serialises into JSON that
 * jansson accepts; the message pool and the header workspace are handed
 * back on smtp_end(), and so is every byte the session held beyond its
 * struct (line buffers included: with one per direction no line is ever cut
 * for lack of one); and the differential one: smtp.h promises any split of
 * the bytes gives the same result, so the session is run twice — chunks fed
 * whole, then each chunk cut at pseudo-random points — and the event dumps
 * must be equal. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fuzzdump.h"
#include "fuzzlib.h"
#include "netlist.h"
#include "record.h"
#include "smtp.h"

static const uint64_t gap_len[8] = { 0, 1, 2, 7, 100, 1000, 65536, (1ull << 32) + 5 };

static struct {
	struct message *m[2];
	struct message_workspaces *ws; /* one: a session reads one header block at a time */
	bool taken[2];
	unsigned size;
	struct dump d;
	bool check_json;             /* first run only: the second must match it */
	struct smtp_session *s;      /* one session, reset per run as the tracker's pool does */
	struct smtp_line_pool *lines; /* two of each size: one per direction, never short */
	struct smtp_stats stats;
	struct smtp_env env;
} st;

static char json[RECORD_JSON_MAX];

static void on_txn(void *ctx, const struct smtp_txn *t)
{
	(void)ctx;
	struct dump *d = &st.d;
	dump_f(d, "txn ts=%llu depth=%u\n", (unsigned long long)t->ts_us, t->trans_depth);
	dump_str(d, "helo", t->helo, SMTP_HELO_MAX);
	dump_str(d, "auth_user", t->auth_user, SMTP_USER_MAX);
	dump_str(d, "auth_mech", t->auth_mech, SMTP_MECH_MAX);
	dump_str(d, "mailfrom", t->mailfrom, SMTP_PATH_MAX);
	FUZZ_CHECK(t->n_rcpt <= SMTP_RCPT_KEEP_MAX);
	FUZZ_CHECK(t->n_rcpt <= t->rcpt_total);
	for (unsigned i = 0; i < t->n_rcpt; i++) {
		FUZZ_CHECK(t->rcpt[i] != NULL);
		dump_str(d, "rcpt", t->rcpt[i], SMTP_PATH_MAX);
		dump_f(d, "rcpt_code=%u\n", t->rcpt_code[i]);
	}
	dump_f(d, "rcpt_total=%u acc=%u rej=%u auth_ok=%d tls=%d data=%d/%d replies=%d "
	       "code=%u size=%llu gaps=%u\n", t->rcpt_total, t->rcpt_accepted,
	       t->rcpt_rejected, t->auth_ok, t->tls, t->data_seen, t->data_done,
	       t->replies_seen, t->data_code, (unsigned long long)t->size, t->gaps);
	dump_str(d, "last_reply", t->last_reply, SMTP_REPLY_MAX);
	if (t->msg)
		dump_message_info(d, t->msg);

	/* The record relaywatch would write. */
	if (!st.check_json)
		return;
	struct flow_endpoints e;
	memset(&e, 0, sizeof e);
	e.orig_h[0] = 192, e.orig_h[1] = 0, e.orig_h[2] = 2, e.orig_h[3] = 1;
	e.resp_h[0] = 192, e.resp_h[1] = 0, e.resp_h[2] = 2, e.resp_h[3] = 25;
	e.orig_p = 40000, e.resp_p = 25;
	struct rw_record r;
	record_build(&r, &e, "CFUZZ", t);
	FUZZ_CHECK(strlen(r.account) <= ADDRESS_MAX);
	bool overflow = false;
	size_t n = record_to_json(&r, json, sizeof json, &overflow);
	FUZZ_CHECK(!overflow);
	json_error_t err;
	json_t *j = json_loadb(json, n, JSON_REJECT_DUPLICATES, &err);
	if (!j)
		fprintf(stderr, "record JSON rejected (%s): %.*s\n", err.text, (int)n, json);
	FUZZ_CHECK(j != NULL);
	json_decref(j);
}

static void on_auth(void *ctx, const struct smtp_auth_event *a)
{
	(void)ctx;
	FUZZ_CHECK(a->mech != NULL);
	dump_str(&st.d, "auth_mech", a->mech, SMTP_MECH_MAX);
	dump_str(&st.d, "auth_user", a->user, SMTP_USER_MAX);
	dump_f(&st.d, "auth outcome=%d code=%u\n", (int)a->outcome, a->code);
}

static void on_starttls(void *ctx, uint64_t ts_us)
{
	(void)ctx;
	dump_f(&st.d, "starttls %llu\n", (unsigned long long)ts_us);
}

static struct message *acquire(void *ctx)
{
	(void)ctx;
	for (unsigned i = 0; i < st.size; i++)
		if (!st.taken[i]) {
			st.taken[i] = true;
			message_reset(st.m[i]);
			return st.m[i];
		}
	return NULL;
}

static void release(void *ctx, struct message *m)
{
	(void)ctx;
	for (unsigned i = 0; i < st.size; i++)
		if (m == st.m[i]) {
			FUZZ_CHECK(st.taken[i]);
			st.taken[i] = false;
			message_reset(m); /* as the tracker does: its workspace goes back */
			return;
		}
	FUZZ_CHECK(!"released a parser that is not from the pool");
}

static const struct smtp_events events = { on_txn, on_auth, on_starttls, acquire, release };

static void dump_stats(struct dump *d, const struct smtp_stats *s)
{
	dump_f(d, "stats sessions=%llu txns=%llu long=%llu pend=%llu rcpt_over=%llu "
	       "unmatched=%llu bad=%llu bdat=%llu gaps=%llu/%llu auth=%llu/%llu tls=%llu "
	       "nomsg=%llu\n",
	       (unsigned long long)s->sessions, (unsigned long long)s->transactions,
	       (unsigned long long)s->lines_too_long, (unsigned long long)s->pending_overflow,
	       (unsigned long long)s->rcpt_over_keep, (unsigned long long)s->unmatched_replies,
	       (unsigned long long)s->bad_replies, (unsigned long long)s->bdat_invalid,
	       (unsigned long long)s->gaps, (unsigned long long)s->gap_bytes,
	       (unsigned long long)s->auth_attempts, (unsigned long long)s->auth_failures,
	       (unsigned long long)s->starttls, (unsigned long long)s->no_message_parser);
}

static void pool_check_empty(void)
{
	for (unsigned i = 0; i < st.size; i++)
		FUZZ_CHECK(!st.taken[i]);
	struct message_workspaces_stats ws;
	message_workspaces_get_stats(st.ws, &ws);
	FUZZ_CHECK(ws.in_use == 0);
	FUZZ_CHECK(ws.made <= 1);
}

/* Feed one chunk, whole or cut at pseudo-random points. */
static void feed(struct smtp_session *s, bool client, const uint8_t *p, size_t n, uint64_t ts,
		 uint64_t *rng)
{
	if (!rng) {
		smtp_feed(s, &st.env, client, p, n, ts);
		return;
	}
	while (n) {
		uint32_t r = fuzz_rand(rng);
		/* mostly short pieces, so CRLFs and "\r\n.\r\n" get cut */
		size_t k = (r & 3) == 0 ? 1 + (r >> 2) % 64 : 1 + (r >> 2) % 4;
		if (k > n)
			k = n;
		smtp_feed(s, &st.env, client, p, k, ts);
		p += k;
		n -= k;
	}
}

static void run(const uint8_t *data, size_t size, bool split, struct dump *out)
{
	uint8_t opt = data[0];
	uint64_t rng = 0x9e3779b97f4a7c15ull ^ ((uint64_t)(opt >> 2) + 1) * 0x2545f4914f6cdd1dull;
	memset(&st.stats, 0, sizeof st.stats);
	memset(&st.d, 0, sizeof st.d);
	st.size = opt & 2 ? 1 : 2;
	st.check_json = !split;
	struct smtp_session *s = st.s;
	smtp_session_reset(s, &st.env);
	smtp_session_start(s, &st.env, opt & 1);

	uint64_t ts = 1700000000ull * 1000000;
	const uint8_t *p = data + 1, *end = data + size;
	while (p < end) {
		const uint8_t *q = p;
		while (q + 1 < end && !(q[0] == 0xff && q[1] == 0xff))
			q++;
		if (q + 1 >= end)
			q = end;
		uint8_t ctl = *p;
		const uint8_t *body = p + 1;
		size_t n = q > body ? (size_t)(q - body) : 0;
		bool client = ctl & 1;
		ts += (uint64_t)(ctl >> 5) * 1000000 + 1;
		if (ctl & 0x10) {
			smtp_end(s, &st.env, ts);
			pool_check_empty();
			FUZZ_CHECK(smtp_session_bytes(s) == smtp_session_sizeof());
			smtp_session_reset(s, &st.env);
			smtp_session_start(s, &st.env, opt & 1);
			dump_f(&st.d, "-- end\n");
		}
		if ((ctl >> 1) & 7)
			smtp_gap(s, &st.env, client, gap_len[(ctl >> 1) & 7], ts);
		feed(s, client, body, n, ts, split ? &rng : NULL);
		(void)smtp_in_tls(s);
		(void)smtp_looks_like_smtp(s);
		p = q + 2;
	}
	smtp_end(s, &st.env, ts + 1);
	pool_check_empty();
	FUZZ_CHECK(smtp_session_bytes(s) == smtp_session_sizeof());
	FUZZ_CHECK(st.stats.store_bytes == 0 && st.stats.line_bufs_small == 0 &&
		   st.stats.line_bufs_big == 0);
	FUZZ_CHECK(st.stats.lines_no_buffer == 0);
	dump_stats(&st.d, &st.stats);
	*out = st.d;
	memset(&st.d, 0, sizeof st.d);
}

static void cleanup(void)
{
	smtp_session_destroy(st.s, &st.env);
	smtp_line_pool_destroy(st.lines);
	message_destroy(st.m[0]);
	message_destroy(st.m[1]);
	message_workspaces_destroy(st.ws);
	rfc2047_cleanup();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (!st.m[0]) {
		st.ws = message_workspaces_create(1);
		FUZZ_CHECK(st.ws != NULL);
		st.m[0] = message_create(st.ws);
		st.m[1] = message_create(st.ws);
		st.lines = smtp_line_pool_create(2, 2);
		/* a local domain, so that recipients past the kept ones are
		 * held against it (rcpt_relayed) */
		static struct domain_list local = { 1, { "example.jp" } };
		st.env = (struct smtp_env){ &events, NULL, &st.stats, st.lines, &local };
		st.s = smtp_session_create();
		FUZZ_CHECK(st.m[0] && st.m[1] && st.lines && st.s);
		atexit(cleanup);
	}
	struct dump whole, split;
	run(data, size, false, &whole);
	run(data, size, true, &split);
	dump_compare(&whole, &split, "smtp: one split vs another");
	dump_free(&whole);
	dump_free(&split);
	return 0;
}

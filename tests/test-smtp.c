/* test-smtp.c — sensor/smtp.c fed strings, no pcap and no Redis
 * (STYLE.md 6): pairing, pipelining, DATA/BDAT, AUTH and secrets, STARTTLS,
 * gaps, one-sided sessions, open proxies, every bound at the limit and one
 * past it, and the session's memory: lines carried in pooled buffers, the
 * store and the queue growing to their bounds, secrets wiped everywhere. */
#include "testlib.h"

#include "netlist.h"
#include "smtp.h"

#define MAX_TXN 256

/* What the events delivered, copied out (the event pointers are borrowed). */
struct seen_txn {
	unsigned depth;
	char helo[300], mailfrom[400], rcpt[8][400], last_reply[600], subject[600], from[600];
	char auth_user[300], auth_mech[32];
	uint16_t rcpt_code[SMTP_RCPT_KEEP_MAX];
	unsigned n_rcpt, rcpt_total, rcpt_accepted, rcpt_rejected, rcpt_relayed_unkept;
	bool tls, data_done, has_msg;
	uint16_t data_code;
	uint64_t size;
	unsigned gaps;
};

static struct seen_txn txns[MAX_TXN];
static unsigned n_txn;
static struct smtp_auth_event auths[16];
static char auth_users[16][300];
static unsigned n_auth;
static unsigned n_starttls;
static struct smtp_stats stats;
#define POOL_MSG 6 /* the open record and CLOSING_MAX closing ones, and one more */
static struct message *pool_msg[POOL_MSG];
static bool msg_taken[POOL_MSG];
static struct smtp_line_pool *lines; /* never short for one session at a time */

static void cp(char *dst, size_t n, const char *src)
{
	snprintf(dst, n, "%s", src ? src : "(null)");
}

static void on_txn(void *ctx, const struct smtp_txn *t)
{
	(void)ctx;
	if (n_txn == MAX_TXN)
		return;
	struct seen_txn *s = &txns[n_txn++];
	memset(s, 0, sizeof *s);
	s->depth = t->trans_depth;
	cp(s->helo, sizeof s->helo, t->helo);
	cp(s->mailfrom, sizeof s->mailfrom, t->mailfrom);
	for (unsigned i = 0; i < t->n_rcpt && i < 8; i++)
		cp(s->rcpt[i], sizeof s->rcpt[i], t->rcpt[i]);
	for (unsigned i = 0; i < t->n_rcpt; i++)
		s->rcpt_code[i] = t->rcpt_code[i];
	s->n_rcpt = t->n_rcpt;
	s->rcpt_total = t->rcpt_total;
	s->rcpt_accepted = t->rcpt_accepted;
	s->rcpt_rejected = t->rcpt_rejected;
	s->rcpt_relayed_unkept = t->rcpt_relayed_unkept;
	cp(s->last_reply, sizeof s->last_reply, t->last_reply);
	cp(s->auth_user, sizeof s->auth_user, t->auth_user);
	cp(s->auth_mech, sizeof s->auth_mech, t->auth_mech);
	s->tls = t->tls;
	s->data_done = t->data_done;
	s->data_code = t->data_code;
	s->size = t->size;
	s->gaps = t->gaps;
	s->has_msg = t->msg != NULL;
	cp(s->subject, sizeof s->subject, t->msg ? t->msg->subject_raw : NULL);
	cp(s->from, sizeof s->from, t->msg ? t->msg->from : NULL);
}

static void on_auth(void *ctx, const struct smtp_auth_event *a)
{
	(void)ctx;
	if (n_auth < 16) {
		auths[n_auth] = *a;
		cp(auth_users[n_auth], sizeof auth_users[0], a->user);
		n_auth++;
	}
}

static void on_starttls(void *ctx, uint64_t ts)
{
	(void)ctx;
	(void)ts;
	n_starttls++;
}

/* A pool of parsers, as the tracker's: a pipelined session can hold
 * closing messages and the next one. */
static struct message *acquire(void *ctx)
{
	(void)ctx;
	for (int i = 0; i < POOL_MSG; i++)
		if (!msg_taken[i]) {
			msg_taken[i] = true;
			message_reset(pool_msg[i]);
			return pool_msg[i];
		}
	return NULL;
}

static void release(void *ctx, struct message *m)
{
	(void)ctx;
	int i = 0;
	while (i < POOL_MSG - 1 && m != pool_msg[i])
		i++;
	CHECK(m == pool_msg[i]);
	CHECK(msg_taken[i]);
	msg_taken[i] = false;
}

static const struct smtp_events events = { on_txn, on_auth, on_starttls, acquire, release };

/* The local domains of the envs made from now on (NULL: not known). */
static const struct domain_list *env_local;

/* The shared part of a session with line pool `pool`: one per pool, as
 * sessions must not outlive theirs. */
static const struct smtp_env *env_of(struct smtp_line_pool *pool)
{
	static struct smtp_env envs[8];
	static unsigned n;
	for (unsigned i = 0; i < n; i++)
		if (envs[i].lines == pool && envs[i].local_domains == env_local)
			return &envs[i];
	if (n == sizeof envs / sizeof envs[0]) {
		fprintf(stderr, "env_of: more than %u line pools\n", n);
		abort();    /* a CHECK would go on and write past envs[] */
	}
	envs[n] = (struct smtp_env){ &events, NULL, &stats, pool, env_local };
	return &envs[n++];
}

/* The env each live session started with: a session keeps none, every
 * call passes it (smtp.h). */
static struct {
	const struct smtp_session *s;
	const struct smtp_env *env;
} live[4];

static const struct smtp_env *env_for(const struct smtp_session *s)
{
	for (size_t i = 0; i < sizeof live / sizeof live[0]; i++)
		if (live[i].s == s)
			return live[i].env;
	fprintf(stderr, "env_for: not a live session\n");
	abort();
}

/* A session with line pool `pool`, started, without resetting what the
 * events recorded (a second session next to the first). */
static struct smtp_session *session_with(bool handshake, struct smtp_line_pool *pool)
{
	struct smtp_session *s = smtp_session_create();
	size_t i = 0;
	while (i < sizeof live / sizeof live[0] && live[i].s)
		i++;
	if (!s || i == sizeof live / sizeof live[0]) {
		fprintf(stderr, "session_with: no memory, or more than %zu sessions\n", i);
		abort();
	}
	live[i].s = s;
	live[i].env = env_of(pool);
	smtp_session_start(s, live[i].env, handshake);
	return s;
}

static void destroy(struct smtp_session *s)
{
	for (size_t i = 0; i < sizeof live / sizeof live[0]; i++)
		if (live[i].s == s) {
			smtp_session_destroy(s, live[i].env);
			live[i].s = NULL;
			return;
		}
	abort();
}

static struct smtp_session *start_with(bool handshake, struct smtp_line_pool *pool)
{
	n_txn = n_auth = n_starttls = 0;
	memset(&stats, 0, sizeof stats);
	return session_with(handshake, pool);
}

static struct smtp_session *start(bool handshake)
{
	return start_with(handshake, lines);
}

static void C(struct smtp_session *s, const char *text)
{
	smtp_feed(s, env_for(s), true, (const uint8_t *)text, strlen(text), 1000);
}

static void S(struct smtp_session *s, const char *text)
{
	smtp_feed(s, env_for(s), false, (const uint8_t *)text, strlen(text), 1000);
}

static void finish(struct smtp_session *s)
{
	smtp_end(s, env_for(s), 2000);
	destroy(s);
	for (int i = 0; i < POOL_MSG; i++)
		CHECK(!msg_taken[i]); /* parsers always go back to the pool */
}

static const char *MSG =
	"From: Alice <alice@pref.example.jp>\r\n"
	"To: bob@example.org\r\n"
	"Subject: hello\r\n"
	"\r\n"
	"body line\r\n"
	"..dotted\r\n";

static void test_basic_transaction(void)
{
	struct smtp_session *s = start(true);
	S(s, "220 mx.example.jp ESMTP\r\n");
	C(s, "EHLO client.example\r\n");
	S(s, "250-mx.example.jp\r\n250-PIPELINING\r\n250 SIZE 1000\r\n");
	C(s, "MAIL FROM:<alice@pref.example.jp> SIZE=100\r\n");
	S(s, "250 2.1.0 Ok\r\n");
	C(s, "RCPT TO:<bob@example.org>\r\n");
	S(s, "250 2.1.5 Ok\r\n");
	C(s, "RCPT TO:<nobody@example.org>\r\n");
	S(s, "550 5.1.1 unknown\r\n");
	C(s, "DATA\r\n");
	S(s, "354 go ahead\r\n");
	C(s, MSG);
	C(s, ".\r\n");
	S(s, "250 2.0.0 Ok: queued as ABC\r\n");
	CHECK_INT(n_txn, 1);
	struct seen_txn *t = &txns[0];
	CHECK_INT(t->depth, 1);
	CHECK_STR(t->helo, "client.example");
	CHECK_STR(t->mailfrom, "alice@pref.example.jp");
	CHECK_INT(t->n_rcpt, 2);
	CHECK_STR(t->rcpt[0], "bob@example.org");
	CHECK_INT(t->rcpt_total, 2);
	CHECK_INT(t->rcpt_accepted, 1);
	CHECK_INT(t->rcpt_rejected, 1);
	CHECK_STR(t->last_reply, "250 2.0.0 Ok: queued as ABC");
	CHECK_INT(t->data_code, 250);
	CHECK(t->data_done);
	CHECK_STR(t->subject, "hello");
	CHECK_STR(t->from, "Alice <alice@pref.example.jp>");
	CHECK_INT(t->size, strlen(MSG) - 1); /* one stuffed dot removed */
	C(s, "QUIT\r\n");
	S(s, "221 bye\r\n");
	finish(s);
	CHECK_INT(n_txn, 1); /* QUIT alone writes no record */
}

static void test_pipelining(void)
{
	struct smtp_session *s = start(true);
	S(s, "220 mx ESMTP\r\n");
	C(s, "EHLO c\r\n");
	S(s, "250-mx\r\n250 PIPELINING\r\n");
	C(s, "MAIL FROM:<a@x.jp>\r\nRCPT TO:<b@y.org>\r\nRCPT TO:<c@z.org>\r\nDATA\r\n");
	S(s, "250 ok\r\n250 ok\r\n452 too many\r\n354 go\r\n");
	C(s, "Subject: piped\r\n\r\nx\r\n.\r\nMAIL FROM:<a@x.jp>\r\nRCPT TO:<d@w.org>\r\nDATA\r\n");
	S(s, "250 queued 1\r\n250 ok\r\n250 ok\r\n354 go\r\n");
	C(s, "Subject: second\r\n\r\ny\r\n.\r\nQUIT\r\n");
	S(s, "250 queued 2\r\n221 bye\r\n");
	finish(s);
	CHECK_INT(n_txn, 2);
	CHECK_INT(txns[0].depth, 1);
	CHECK_INT(txns[0].rcpt_accepted, 1);
	CHECK_INT(txns[0].rcpt_rejected, 1);
	CHECK_STR(txns[0].last_reply, "250 queued 1");
	CHECK_STR(txns[0].subject, "piped");
	CHECK_INT(txns[1].depth, 2);
	CHECK_STR(txns[1].rcpt[0], "d@w.org");
	CHECK_STR(txns[1].last_reply, "250 queued 2");
	CHECK_STR(txns[1].subject, "second");
}

/* Whole transactions pipelined ahead of their replies (RFC 3030 BDAT, RSET
 * probes): each record waits for its own replies, and they are written in
 * order with their own depth, codes and last reply. */
static void test_pipelined_transactions(void)
{
	struct smtp_session *s = start(true);
	S(s, "220 mx ESMTP\r\n");
	C(s, "EHLO c\r\n");
	S(s, "250-mx\r\n250-PIPELINING\r\n250 CHUNKING\r\n");
	C(s, "MAIL FROM:<a@x.jp>\r\nRCPT TO:<b1@y.org>\r\nBDAT 19 LAST\r\nSubject: one\r\n\r\nx\r\n"
	     "MAIL FROM:<a@x.jp>\r\nRCPT TO:<b2@y.org>\r\nBDAT 19 LAST\r\nSubject: two\r\n\r\nx\r\n"
	     "MAIL FROM:<a@x.jp>\r\nRCPT TO:<b3@y.org>\r\nBDAT 21 LAST\r\nSubject: three\r\n\r\nx\r\n");
	S(s, "250 ok1\r\n250 ok1\r\n250 queued1\r\n250 ok2\r\n550 no2\r\n554 nothing2\r\n"
	     "250 ok3\r\n250 ok3\r\n250 queued3\r\n");
	C(s, "QUIT\r\n");
	S(s, "221 bye\r\n");
	finish(s);
	CHECK_INT(n_txn, 3);
	for (unsigned i = 0; i < 3 && i < n_txn; i++) {
		testlib_current = i == 0 ? "pipelined BDAT 1" : i == 1 ? "pipelined BDAT 2" : "pipelined BDAT 3";
		CHECK_INT(txns[i].depth, i + 1);
		CHECK_INT(txns[i].rcpt_total, 1);
		CHECK_INT(txns[i].rcpt_accepted, i == 1 ? 0 : 1);
		CHECK_INT(txns[i].rcpt_rejected, i == 1 ? 1 : 0);
		CHECK_INT(txns[i].rcpt_code[0], i == 1 ? 550 : 250);
		CHECK_STR(txns[i].last_reply, i == 0 ? "250 queued1" : i == 1 ? "554 nothing2" : "250 queued3");
		CHECK_INT(txns[i].data_code, i == 1 ? 554 : 250);
		CHECK_STR(txns[i].subject, i == 0 ? "one" : i == 1 ? "two" : "three");
	}
	testlib_current = "test_pipelined_transactions";
	CHECK_INT(stats.records_early, 0);

	/* address probes: MAIL, RCPT, RSET in one flight, twice */
	s = start(true);
	S(s, "220 mx\r\n");
	C(s, "EHLO c\r\n");
	S(s, "250 PIPELINING\r\n");
	C(s, "MAIL FROM:<>\r\nRCPT TO:<u1@pref.example.jp>\r\nRSET\r\n"
	     "MAIL FROM:<>\r\nRCPT TO:<u2@pref.example.jp>\r\nRSET\r\nQUIT\r\n");
	S(s, "250 ok\r\n550 5.1.1 no u1\r\n250 reset\r\n250 ok\r\n250 2.1.5 u2 ok\r\n"
	     "250 reset 2\r\n221 bye\r\n");
	finish(s);
	CHECK_INT(n_txn, 2);
	CHECK_INT(txns[0].rcpt_rejected, 1);
	CHECK_INT(txns[0].rcpt_accepted, 0);
	CHECK_INT(txns[0].rcpt_code[0], 550);
	CHECK_STR(txns[0].last_reply, "250 reset");
	CHECK_INT(txns[1].rcpt_accepted, 1);
	CHECK_INT(txns[1].rcpt_code[0], 250);
	CHECK_INT(txns[0].depth, 1);
	CHECK_INT(txns[1].depth, 1); /* no message transferred (Zeek's rule) */

	/* more whole transactions ahead than CLOSING_MAX: the oldest are
	 * written before their replies, counted; none is lost, order holds */
	s = start(true);
	S(s, "220 mx\r\n");
	C(s, "EHLO c\r\n");
	S(s, "250 CHUNKING\r\n");
	char flight[2048], answers[2048];
	size_t f = 0, a = 0;
	for (int i = 0; i < 7; i++) {
		f += (size_t)sprintf(flight + f, "MAIL FROM:<a@x.jp>\r\nRCPT TO:<r%d@y.org>\r\n"
				     "BDAT 5 LAST\r\n\r\nx\r\n", i);
		a += (size_t)sprintf(answers + a, "250 m\r\n250 r\r\n250 q%d\r\n", i);
	}
	C(s, flight);
	S(s, answers);
	finish(s);
	CHECK_INT(n_txn, 7);
	for (unsigned i = 0; i < n_txn; i++) {
		char want[16];
		snprintf(want, sizeof want, "r%u@y.org", i);
		CHECK_STR(txns[i].rcpt[0], want);
	}
	CHECK_STR(txns[6].last_reply, "250 q6");
	CHECK_INT(stats.records_early, 2);
}

static void test_rset_and_mail_flush(void)
{
	struct smtp_session *s = start(true);
	S(s, "220 mx\r\n");
	C(s, "helo c\r\n");
	S(s, "250 mx\r\n");
	C(s, "mail from:<a@x.jp>\r\n");
	S(s, "250 ok\r\n");
	C(s, "rset\r\n");
	S(s, "250 reset\r\n");
	C(s, "MAIL FROM:<b@x.jp>\r\n");  /* flushes the aborted one, same depth */
	S(s, "250 ok\r\n");
	C(s, "RCPT TO:<c@y.org>\r\nDATA\r\n");
	S(s, "250 ok\r\n354 go\r\n");
	C(s, "\r\nno headers\r\n.\r\n");
	S(s, "250 done\r\n");
	finish(s);
	CHECK_INT(n_txn, 2);
	CHECK_STR(txns[0].mailfrom, "a@x.jp");
	CHECK_INT(txns[0].depth, 1);
	CHECK_STR(txns[0].last_reply, "250 reset");
	CHECK(!txns[0].data_done);
	CHECK_STR(txns[1].mailfrom, "b@x.jp");
	CHECK_INT(txns[1].depth, 1);
}

static void feed_split(struct smtp_session *s, bool client, const char *text, size_t step)
{
	size_t n = strlen(text);
	for (size_t i = 0; i < n; i += step)
		smtp_feed(s, env_for(s), client, (const uint8_t *)text + i,
			  i + step > n ? n - i : step, 1);
}

static void test_dot_stuffing_any_split(void)
{
	/* The end of data and stuffed dots are found wherever TCP cuts. */
	const char *content = "Subject: dots\r\n\r\n..one\r\n.two\r\n...\r\nlast\r\n.\r\nQUIT\r\n";
	for (size_t step = 1; step <= 9; step++) {
		struct smtp_session *s = start(true);
		S(s, "220 mx\r\n");
		C(s, "EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n");
		S(s, "250 a\r\n250 b\r\n250 c\r\n354 d\r\n");
		feed_split(s, true, content, step);
		S(s, "250 got it\r\n221 bye\r\n");
		finish(s);
		CHECK_INT(n_txn, 1);
		/* "Subject: dots\r\n\r\n.one\r\ntwo\r\n..\r\nlast\r\n" */
		CHECK_INT(txns[0].size, 15 + 2 + 6 + 5 + 4 + 6);
		CHECK_STR(txns[0].subject, "dots");
		CHECK_STR(txns[0].last_reply, "250 got it");
	}
}

static void test_bdat(void)
{
	struct smtp_session *s = start(true);
	S(s, "220 mx\r\n");
	C(s, "EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n");
	S(s, "250-mx\r\n250 CHUNKING\r\n250 ok\r\n250 ok\r\n");
	C(s, "BDAT 18\r\nSubject: chunk\r\n\r\n");
	S(s, "250 18 bytes\r\n");
	C(s, "BDAT 9\r\n.\r\nbody\r\n");   /* no dot rules inside BDAT */
	S(s, "250 9 bytes\r\n");
	C(s, "BDAT 0 LAST\r\n");
	S(s, "250 message ok\r\n");
	C(s, "MAIL FROM:<c@x>\r\nRCPT TO:<d@y>\r\nBDAT 4 last\r\nab\r\n");
	S(s, "250 ok\r\n250 ok\r\n250 second\r\n");
	finish(s);
	CHECK_INT(n_txn, 2);
	CHECK_INT(txns[0].size, 27);
	CHECK_STR(txns[0].subject, "chunk");
	CHECK_STR(txns[0].last_reply, "250 message ok");
	CHECK_INT(txns[0].depth, 1);
	CHECK_INT(txns[1].depth, 2);      /* lower-case "last" ends a message too */
	CHECK_STR(txns[1].last_reply, "250 second");
	CHECK_INT(stats.bdat_invalid, 0);
}

static void test_bdat_invalid_sizes(void)
{
	static const char *bad[] = {
		"BDAT\r\n", "BDAT -1 LAST\r\n", "BDAT 184467440737095516150 LAST\r\n",
		"BDAT 15555555557777777777 LAST\r\n", "BDAT 1234 SCRAMBLE\r\n", "BDAT SCRAMBLE\r\n",
		"BDAT 12 LASTX\r\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct smtp_session *s = start(true);
		S(s, "220 mx\r\n");
		C(s, "EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n");
		S(s, "250 mx\r\n250 ok\r\n250 ok\r\n");
		C(s, bad[i]);
		/* no chunk mode: the next line is a command again */
		C(s, "RSET\r\n");
		S(s, "521 5.5.4 Syntax: BDAT count [LAST]\r\n250 reset\r\n");
		finish(s);
		CHECK_INT(stats.bdat_invalid, 1);
		CHECK_INT(n_txn, 1);
		CHECK_STR(txns[0].mailfrom, "a@x");
	}
	/* The largest valid size is accepted (INT64_MAX); one more is not. */
	struct smtp_session *s = start(true);
	C(s, "MAIL FROM:<a@x>\r\nBDAT 9223372036854775807\r\nabc");
	finish(s);
	CHECK_INT(stats.bdat_invalid, 0);
	s = start(true);
	C(s, "MAIL FROM:<a@x>\r\nBDAT 9223372036854775808\r\nabc");
	finish(s);
	CHECK_INT(stats.bdat_invalid, 1);
}

static void test_starttls(void)
{
	struct smtp_session *s = start(true);
	S(s, "220 mx ESMTP\r\n");
	C(s, "EHLO openssl.client.net\r\n");
	S(s, "250-mx\r\n250 STARTTLS\r\n");
	C(s, "STARTTLS\r\n");
	S(s, "220 2.0.0 Ready to start TLS\r\n");
	CHECK(smtp_in_tls(s));
	C(s, "\x16\x03\x01\x02\x00MAIL FROM:<hidden@x>\r\n");
	S(s, "\x16\x03\x03 junk\r\n");
	finish(s);
	CHECK_INT(n_starttls, 1);
	CHECK_INT(n_txn, 1);
	CHECK(txns[0].tls);
	CHECK_STR(txns[0].last_reply, "220 2.0.0 Ready to start TLS");
	CHECK_STR(txns[0].mailfrom, "(null)");
	CHECK_STR(txns[0].helo, "openssl.client.net");
}

/* Every AUTH form: the user comes out, the secret never does. */
struct auth_case {
	const char *name;
	const char *client[4];
	const char *server[4];
	const char *user;
	enum smtp_auth_outcome outcome;
	const char *secret; /* must not be anywhere in the session's memory */
	const char *wire;   /* nor the base64 that carried it */
};

static bool mem_has(const void *hay, size_t n, const char *needle)
{
	return memmem(hay, n, needle, strlen(needle)) != NULL;
}

struct scan {
	const char *needle;
	bool found;
};

static void scan_block(void *arg, const void *p, size_t n)
{
	struct scan *sc = arg;
	if (mem_has(p, n, sc->needle))
		sc->found = true;
}

/* Is needle anywhere in what the session holds, or in a free buffer of the
 * line pool? */
static bool session_has(const struct smtp_session *s, const char *needle)
{
	struct scan sc = { needle, false };
	if (!needle[0])
		return false;
	smtp_session_memory(s, env_for(s), scan_block, &sc);
	smtp_line_pool_memory(lines, scan_block, &sc);
	return sc.found;
}

static void test_auth_forms(void)
{
	/* base64 of "\0alice@pref.example.jp\0Pa55-gold-PLAIN" etc. */
	static const struct auth_case cases[] = {
		{ "PLAIN initial", { "AUTH PLAIN AGFsaWNlQHByZWYuZXhhbXBsZS5qcABQYTU1LWdvbGQtUExBSU4=\r\n" },
		  { "235 2.7.0 ok\r\n" }, "alice@pref.example.jp", SMTP_AUTH_SUCCESS, "Pa55-gold-PLAIN",
		  "AGFsaWNlQHByZWYuZXhhbXBsZS5qcABQYTU1LWdvbGQtUExBSU4=" },
		{ "PLAIN continuation", { "AUTH PLAIN\r\n", "AGFsaWNlQHByZWYuZXhhbXBsZS5qcABQYTU1LWdvbGQtUExBSU4=\r\n" },
		  { "334 \r\n", "535 5.7.8 bad\r\n" }, "alice@pref.example.jp", SMTP_AUTH_FAILURE,
		  "Pa55-gold-PLAIN", "AGFsaWNlQHByZWYuZXhhbXBsZS5qcABQYTU1LWdvbGQtUExBSU4=" },
		{ "LOGIN", { "AUTH LOGIN\r\n", "Ym9zYWktaGVsaUBwcmVmLmV4YW1wbGUuanA=\r\n", "aGVsaTEyMw==\r\n" },
		  { "334 VXNlcm5hbWU6\r\n", "334 UGFzc3dvcmQ6\r\n", "235 ok\r\n" },
		  "bosai-heli@pref.example.jp", SMTP_AUTH_SUCCESS, "heli123", "aGVsaTEyMw==" },
		{ "LOGIN initial", { "AUTH LOGIN Ym9zYWktaGVsaUBwcmVmLmV4YW1wbGUuanA=\r\n", "aGVsaTEyMw==\r\n" },
		  { "334 UGFzc3dvcmQ6\r\n", "535 no\r\n" }, "bosai-heli@pref.example.jp",
		  SMTP_AUTH_FAILURE, "heli123", "aGVsaTEyMw==" },
		{ "CRAM-MD5", { "AUTH CRAM-MD5\r\n", "Y2FyYWwgZDY3NjI0OTRjYjAzZmQ5NGJhOWQ5YmJmYjdlOTEzM2E=\r\n" },
		  { "334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+\r\n", "235 ok\r\n" },
		  "caral", SMTP_AUTH_SUCCESS, "d6762494cb03fd94ba9d9bbfb7e9133a",
		  "Y2FyYWwgZDY3NjI0OTRjYjAzZmQ5NGJhOWQ5YmJmYjdlOTEzM2E=" },
		{ "XOAUTH2", { "AUTH XOAUTH2 dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVkbVZ1WkdGemRHRXVZMjl0Q2c9PQEB\r\n" },
		  { "235 ok\r\n" }, "someuser@example.com", SMTP_AUTH_SUCCESS,
		  "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEudmVuZGFzdGEuY29tCg==",
		  "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5" },
		{ "aborted", { "AUTH LOGIN\r\n", "*\r\n" }, { "334 VXNlcm5hbWU6\r\n", "501 cancelled\r\n" },
		  "(null)", SMTP_AUTH_ABORTED, "", "" },
		/* "alice@pref.example.jp\0S3cretPassw0rd": one NUL, authzid
		 * left out; the field after the NUL is the password, never the
		 * user (it was taken as the user, into records and alerts) */
		{ "PLAIN one NUL", { "AUTH PLAIN YWxpY2VAcHJlZi5leGFtcGxlLmpwAFMzY3JldFBhc3N3MHJk\r\n" },
		  { "235 ok\r\n" }, "alice@pref.example.jp", SMTP_AUTH_SUCCESS, "S3cretPassw0rd",
		  "YWxpY2VAcHJlZi5leGFtcGxlLmpwAFMzY3JldFBhc3N3MHJk" },
		/* "\0S3cretPassw0rd": no name at all */
		{ "PLAIN no name", { "AUTH PLAIN AFMzY3JldFBhc3N3MHJk\r\n" }, { "535 no\r\n" },
		  "(null)", SMTP_AUTH_FAILURE, "S3cretPassw0rd", "AFMzY3JldFBhc3N3MHJk" },
		/* "S3cretPassw0rd": no NUL, nothing is a name */
		{ "PLAIN no NUL", { "AUTH PLAIN UzNjcmV0UGFzc3cwcmQ=\r\n" }, { "535 no\r\n" },
		  "(null)", SMTP_AUTH_FAILURE, "S3cretPassw0rd", "UzNjcmV0UGFzc3cwcmQ=" },
		/* a mechanism that hides the user: authenticated, no name */
		{ "NTLM", { "AUTH NTLM TlRMTVNTUAABAAAAB4IIAAAAAAAAAAAAAAAAAAAAAAA=\r\n",
			    "TlRMTVNTUAADAAAAGAAYAEAAAAAYABgAWAAAAA==\r\n" },
		  { "334 TlRMTVNTUAACAAAAAAAAACgAAAABggAAU3J2Tm9uY2UAAAAAAAAAAA==\r\n", "235 ok\r\n" },
		  "(null)", SMTP_AUTH_SUCCESS, "", "" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct auth_case *k = &cases[i];
		testlib_current = k->name;
		struct smtp_session *s = start(true);
		S(s, "220 mx\r\n");
		C(s, "EHLO c\r\n");
		S(s, "250 AUTH PLAIN LOGIN CRAM-MD5 XOAUTH2\r\n");
		for (int j = 0; j < 4 && (k->client[j] || k->server[j]); j++) {
			if (k->client[j])
				C(s, k->client[j]);
			if (k->server[j])
				S(s, k->server[j]);
		}
		C(s, "MAIL FROM:<x@pref.example.jp>\r\n");
		S(s, "250 ok\r\n");
		if (k->secret[0]) {
			CHECK(!session_has(s, k->secret));
			CHECK(!session_has(s, k->wire));
		}
		finish(s);
		CHECK_INT(n_auth, 1);
		CHECK_STR(auth_users[0], k->user);
		CHECK_INT(auths[0].outcome, k->outcome);
		CHECK_INT(n_txn, 1);
		CHECK_STR(txns[0].auth_user,
			  k->outcome == SMTP_AUTH_SUCCESS ? k->user : "(null)");
		/* the answers were never taken for commands */
		CHECK_STR(txns[0].mailfrom, "x@pref.example.jp");
	}
	testlib_current = "test_auth_forms";
}

static void test_auth_one_sided(void)
{
	/* Only the client is captured (asymmetric routing): AUTH LOGIN answers
	 * are still recognised, and the password is never taken as a command. */
	struct smtp_session *s = start(true);
	C(s, "EHLO c\r\nAUTH LOGIN\r\nYWxpY2U=\r\nc2VjcmV0LXB3\r\nMAIL FROM:<alice@x>\r\nRCPT TO:<b@y>\r\n");
	CHECK(!session_has(s, "c2VjcmV0LXB3"));
	finish(s);
	CHECK_INT(n_auth, 1);
	CHECK_STR(auth_users[0], "alice");
	CHECK_INT(auths[0].outcome, SMTP_AUTH_ABORTED); /* outcome never seen */
	CHECK_INT(n_txn, 1);
	CHECK_STR(txns[0].mailfrom, "alice@x");
	CHECK_STR(txns[0].last_reply, "(null)");
}

static void test_one_sided_depth(void)
{
	/* Zeek: without replies no message completes, so depth stays 1. */
	struct smtp_session *s = start(true);
	C(s, "HELO enzo\r\nMAIL FROM:<r@i.org>\r\nRCPT TO:<a@b>\r\nDATA\r\nSubject: Hello1!\r\n\r\nx\r\n.\r\n");
	C(s, "MAIL FROM:<r@i.org>\r\nRCPT TO:<c@d>\r\nDATA\r\nSubject: Hello2!\r\n\r\ny\r\n.\r\nQUIT\r\n");
	finish(s);
	CHECK_INT(n_txn, 2);
	CHECK_INT(txns[0].depth, 1);
	CHECK_INT(txns[1].depth, 1);
	CHECK_STR(txns[0].subject, "Hello1!");
	CHECK_STR(txns[1].subject, "Hello2!");
	CHECK_STR(txns[1].last_reply, "(null)");
}

static void test_gap_in_data_resyncs(void)
{
	struct smtp_session *s = start(true);
	S(s, "220 mx\r\n");
	C(s, "EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n");
	S(s, "250 mx\r\n250 ok\r\n250 ok\r\n354 go\r\n");
	C(s, "Subject: cut\r\n\r\nbody");
	smtp_gap(s, env_for(s), true, 500, 1);
	C(s, "more body\r\n.\r\n");       /* ignored: we do not know where we are */
	S(s, "250 queued\r\n");           /* resynchronised on the reply */
	C(s, "MAIL FROM:<c@x>\r\nRCPT TO:<d@y>\r\nDATA\r\n");
	S(s, "250 ok\r\n250 ok\r\n354 go\r\n");
	C(s, "Subject: after\r\n\r\nz\r\n.\r\n");
	S(s, "250 queued again\r\n");
	finish(s);
	CHECK_INT(stats.gaps, 1);
	CHECK_INT(n_txn, 2);
	CHECK_STR(txns[0].subject, "cut");
	CHECK_INT(txns[0].gaps, 1);
	CHECK_STR(txns[0].last_reply, "250 queued");
	CHECK_STR(txns[1].subject, "after");
	CHECK_INT(txns[1].depth, 1); /* the "." lost in the gap did not count */
}

static void test_record_fields_do_not_leak(void)
{
	/* Every field of a record starts empty: nothing of the previous
	 * transaction (gaps, size, reply, data state) carries over. */
	struct smtp_session *s = start(true);
	S(s, "220 mx\r\n");
	C(s, "EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n");
	S(s, "250 mx\r\n250 ok\r\n250 ok\r\n354 go\r\n");
	C(s, "Subject: one\r\n\r\nbody");
	smtp_gap(s, env_for(s), true, 100, 1);
	S(s, "250 queued 1\r\n");
	C(s, "MAIL FROM:<c@x>\r\n");
	finish(s);
	CHECK_INT(n_txn, 2);
	CHECK_INT(txns[0].gaps, 1);
	CHECK(txns[0].size > 0);
	CHECK_INT(txns[1].gaps, 0);
	CHECK_INT(txns[1].size, 0);
	CHECK(!txns[1].data_done);
	CHECK_INT(txns[1].data_code, 0);
	CHECK_STR(txns[1].last_reply, "(null)");
	CHECK_STR(txns[1].mailfrom, "c@x");
}

static void test_gap_then_354(void)
{
	/* The client's DATA was lost: the 354 after the gap starts a message. */
	struct smtp_session *s = start(true);
	S(s, "220 mx\r\n");
	C(s, "EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n");
	S(s, "250 mx\r\n250 ok\r\n250 ok\r\n");
	smtp_gap(s, env_for(s), true, 6, 1);
	S(s, "354 go\r\n");
	C(s, "Subject: recovered\r\n\r\nz\r\n.\r\n");
	S(s, "250 ok\r\n");
	finish(s);
	CHECK_INT(n_txn, 1);
	CHECK_STR(txns[0].subject, "recovered");
}

/* The open proxy's CONNECT request is recognised by its line, whatever the
 * client's segments: whole, or cut after every byte (a fuzzer's split, or a
 * slow client). */
static void test_http_connect_tunnel(void)
{
	static const char req[] =
		"CONNECT mx.example.de:25 / HTTP/1.0\r\nUser-Agent: x\r\n\r\n";
	for (size_t step = 0; step <= 1; step++) {
		struct smtp_session *s = start(true);
		if (step)
			feed_split(s, true, req, step);
		else
			C(s, req);
		S(s, "HTTP/1.0 200 Connection established\r\n\r\n");
		S(s, "220 mx ready\r\n");
		C(s, "HELO 208.191.73.21\r\n");
		S(s, "250 Ok.\r\n");
		C(s, "MAIL FROM:<spam@lycos.com>\r\n");
		S(s, "250 Ok.\r\n");
		C(s, "RCPT TO:<v@t-online.de>\r\nDATA\r\n");
		S(s, "250 Ok.\r\n354 Ok\r\n");
		C(s, "Subject: spam\r\n\r\nx\r\n.\r\n");
		S(s, "250 Message accepted.\r\n");
		CHECK(smtp_looks_like_smtp(s));
		finish(s);
		CHECK_INT(n_txn, 1);
		CHECK_STR(txns[0].helo, "208.191.73.21");
		CHECK_STR(txns[0].last_reply, "250 Message accepted.");
		CHECK_INT(txns[0].depth, 1);
	}
}

static void test_not_smtp(void)
{
	struct smtp_session *s = start(true);
	static const uint8_t tls_hello[] = { 0x16, 0x03, 0x03, 0x00, 0x5a, 0x02, 0x00, 0x00,
					     0x56, 0x03, 0x03, '\n' };
	smtp_feed(s, env_for(s), false, tls_hello, sizeof tls_hello, 1000);
	CHECK(!smtp_looks_like_smtp(s));
	C(s, "MAIL FROM:<a@b>\r\n");
	finish(s);
	CHECK_INT(n_txn, 0);

	/* Early garbage is judged by where its line ends, not by how much the
	 * segment carrying it holds: a 12 KB first segment whose first line is
	 * not a reply is refuted as its pieces would be (found by fuzz-smtp:
	 * the window was counted per segment). */
	static char big[12 * 1024 + 1];
	memcpy(big, "HTTP/1.1 400 Bad Request\r\n", 26);
	for (size_t i = 26; i + 8 <= sizeof big - 1; i += 8)
		memcpy(big + i, "250 ok\r\n", 8);
	for (int split = 0; split <= 1; split++) {
		s = start(true);
		feed_split(s, false, big, split ? 5 : sizeof big);
		CHECK(smtp_failed(s));
		CHECK_INT(stats.bad_replies, 1);
		finish(s);
	}
}

static void test_line_bound(void)
{
	/* A command line of exactly SMTP_LINE_MAX bytes is whole; one more is
	 * cut and counted once, and the session goes on. The bound holds one
	 * byte per segment (the line carried in pooled buffers) as it does
	 * whole. */
	static char line[SMTP_LINE_MAX + 8];
	for (int split = 0; split <= 1; split++)
		for (int extra = 0; extra <= 1; extra++) {
			struct smtp_session *s = start(true);
			S(s, "220 mx\r\n");
			size_t n = SMTP_LINE_MAX + (size_t)extra;
			memcpy(line, "NOOP ", 5);
			memset(line + 5, 'a', n - 5);
			memcpy(line + n, "\r\n", 3);
			if (split)
				feed_split(s, true, line, 1);
			else
				C(s, line);
			C(s, "MAIL FROM:<a@x>\r\n");
			S(s, "250 noop\r\n250 ok\r\n");
			finish(s);
			CHECK_INT(stats.lines_too_long, extra);
			CHECK_INT(stats.lines_no_buffer, 0);
			CHECK_INT(n_txn, 1);
			CHECK_STR(txns[0].mailfrom, "a@x");
			CHECK_STR(txns[0].last_reply, "250 ok");
		}
}

static void test_pending_bound(void)
{
	for (int extra = 0; extra <= 1; extra++) {
		struct smtp_session *s = start(false);
		for (int i = 0; i < SMTP_PENDING_MAX + extra; i++)
			C(s, "NOOP\r\n");
		CHECK_INT(stats.pending_overflow, extra);
		C(s, "MAIL FROM:<a@x>\r\n");
		finish(s);
		CHECK_INT(n_txn, 1);
	}
}

static void test_rcpt_bound(void)
{
	for (int extra = 0; extra <= 1; extra++) {
		struct smtp_session *s = start(true);
		S(s, "220 mx\r\n");
		C(s, "EHLO c\r\nMAIL FROM:<a@x>\r\n");
		S(s, "250 mx\r\n250 ok\r\n");
		for (int i = 0; i < SMTP_RCPT_KEEP_MAX + extra; i++) {
			char cmd[64];
			snprintf(cmd, sizeof cmd, "RCPT TO:<r%d@d%d.example>\r\n", i, i);
			C(s, cmd);
			S(s, "250 ok\r\n");
		}
		finish(s);
		CHECK_INT(stats.rcpt_over_keep, extra);
		CHECK_INT(n_txn, 1);
		CHECK_INT(txns[0].n_rcpt, SMTP_RCPT_KEEP_MAX);
		CHECK_INT(txns[0].rcpt_total, SMTP_RCPT_KEEP_MAX + extra);
		CHECK_INT(txns[0].rcpt_accepted, SMTP_RCPT_KEEP_MAX + extra);
	}
}

/* An open relay's client sends 100 accepted local recipients first, then
 * its foreign ones: past the 100 kept, each recipient is held against
 * local_domains, and the accepted ones that are relayed are counted
 * (open_relay reads the count). One by one and in one pipelined flight;
 * refused foreign ones, local ones past the bound and a route through a
 * local domain; nothing without local_domains. */
static void test_rcpt_relayed_past_the_bound(void)
{
	static struct domain_list local = { 1, { "pref.example.jp" } };
	static char flight[(SMTP_RCPT_KEEP_MAX + 8) * 48], replies[(SMTP_RCPT_KEEP_MAX + 8) * 16];
	for (int mode = 0; mode < 3; mode++) {
		env_local = mode < 2 ? &local : NULL;
		struct smtp_line_pool *pool = smtp_line_pool_create(2, 2);
		struct smtp_session *s = start_with(true, pool);
		S(s, "220 mx\r\n");
		C(s, "EHLO c\r\nMAIL FROM:<s@x.org>\r\n");
		S(s, "250 mx\r\n250 ok\r\n");
		size_t f = 0, r = 0;
		/* 100 local (the same address), then: 3 foreign accepted, 1
		 * foreign refused, 1 local (subdomain) accepted, a route
		 * through ours accepted */
		for (int i = 0; i < SMTP_RCPT_KEEP_MAX; i++) {
			f += (size_t)sprintf(flight + f, "RCPT TO:<a@pref.example.jp>\r\n");
			r += (size_t)sprintf(replies + r, "250 ok\r\n");
		}
		static const char *const more[][2] = {
			{ "x1@foreign.example", "250 ok" }, { "x2@FOREIGN.example", "250 ok" },
			{ "x3@other.example", "251 will forward" }, { "x4@foreign.example", "554 no" },
			{ "b@mail.pref.example.jp", "250 ok" }, { "u%evil.example@pref.example.jp", "250 ok" },
		};
		for (size_t i = 0; i < sizeof more / sizeof more[0]; i++) {
			f += (size_t)sprintf(flight + f, "RCPT TO:<%s>\r\n", more[i][0]);
			r += (size_t)sprintf(replies + r, "%s\r\n", more[i][1]);
		}
		/* mode 1: flights of 53 RCPTs (one straddles the bound), each
		 * then answered; else lock-step */
		int per = mode == 1 ? 53 : 1;
		for (char *c = flight, *p = replies; *c;) {
			char *ce = c, *pe = p;
			for (int k = 0; k < per && *ce; k++) {
				ce = strstr(ce, "\r\n") + 2;
				pe = strstr(pe, "\r\n") + 2;
			}
			char cc = *ce, pc = *pe;
			*ce = *pe = 0;
			C(s, c);
			S(s, p);
			*ce = cc;
			*pe = pc;
			c = ce;
			p = pe;
		}
		C(s, "DATA\r\n");
		S(s, "354 go\r\n");
		C(s, "Subject: padded\r\n\r\nx\r\n.\r\n");
		S(s, "250 queued\r\n");
		finish(s);
		CHECK_INT(n_txn, 1);
		CHECK_INT(txns[0].n_rcpt, SMTP_RCPT_KEEP_MAX);
		CHECK_INT(txns[0].rcpt_total, SMTP_RCPT_KEEP_MAX + 6);
		CHECK_INT(txns[0].rcpt_accepted, SMTP_RCPT_KEEP_MAX + 5);
		/* x1, x2, x3 and the route; not the refused x4 nor the subdomain */
		CHECK_INT(txns[0].rcpt_relayed_unkept, mode < 2 ? 4 : 0);
		smtp_line_pool_destroy(pool);
	}
	env_local = NULL;
}

static void test_address_forms(void)
{
	struct smtp_session *s = start(true);
	S(s, "220 mx\r\n");
	C(s, "MAIL FROM: <gurpartap@patriots.in>\r\n");           /* space after colon */
	C(s, "RCPT TO:<@relay.example:user@host.example> NOTIFY=NEVER\r\n");
	C(s, "RCPT TO:<>\r\n");                                     /* no address */
	S(s, "250 a\r\n250 b\r\n501 c\r\n");
	C(s, "MAIL FROM:<>\r\n");                                   /* null path: unset */
	finish(s);
	CHECK_INT(n_txn, 2);
	CHECK_STR(txns[0].mailfrom, "gurpartap@patriots.in");
	CHECK_STR(txns[0].rcpt[0], "user@host.example");
	CHECK_INT(txns[0].n_rcpt, 1);
	CHECK_INT(txns[0].rcpt_total, 2);
	CHECK_STR(txns[1].mailfrom, "(null)");
}

static void test_client_before_banner(void)
{
	/* With the handshake seen, EHLO sent before the banner still pairs right. */
	struct smtp_session *s = start(true);
	C(s, "EHLO Bob-PC\r\n");
	S(s, "220 exim ready\r\n250-exim\r\n250 HELP\r\n");
	C(s, "MAIL FROM:<bob@example.org>\r\n");
	S(s, "250 OK\r\n");
	finish(s);
	CHECK_INT(n_txn, 1);
	CHECK_STR(txns[0].last_reply, "250 OK");
	CHECK_INT(stats.unmatched_replies, 0);
}

/* An endless line (no LF ever) is counted as too long when it passes the
 * bound, not only when its LF arrives: the flood of one 100 MB line must
 * show in the counters (found by the flood tests). */
static void test_unterminated_long_line_counted(void)
{
	struct smtp_session *s = start(true);
	S(s, "220 mx ESMTP\r\n");
	static char a[SMTP_LINE_MAX * 3 + 1];
	memset(a, 'A', sizeof a - 1);
	C(s, a);
	C(s, a);
	CHECK_INT(stats.lines_too_long, 1);   /* one line, counted once */
	finish(s);
	CHECK_INT(stats.lines_too_long, 1);
}

/* --- memory: carried lines, the store, the queue -------------------------- */

/* What the session holds beyond its struct. */
static size_t held(const struct smtp_session *s)
{
	return smtp_session_bytes(s) - smtp_session_sizeof();
}

static void b64(const unsigned char *in, size_t n, char *out)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
			     (i + 2 < n ? in[i + 2] : 0);
		out[o++] = tab[v >> 18 & 63];
		out[o++] = tab[v >> 12 & 63];
		out[o++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? tab[v & 63] : '=';
	}
	out[o] = 0;
}

/* Feed all of text but its last byte one byte per segment. */
static void feed_bytes_but_last(struct smtp_session *s, bool client, const char *text)
{
	size_t n = strlen(text);
	for (size_t i = 0; i + 1 < n; i++)
		smtp_feed(s, env_for(s), client, (const uint8_t *)text + i, 1, 1);
}

/* A command and a reply longer than a small carry buffer, one byte per
 * segment: each moves to a whole-line buffer, which goes back when the line
 * ends, and the record is the one the unsplit session writes. A line that
 * lies whole in its segment borrows nothing. */
static void test_line_split_every_byte(void)
{
	static char mail[400], reply[400];
	snprintf(mail, sizeof mail, "MAIL FROM:<sender@example.org> SIZE=1000 ENVID=%0250d\r\n", 7);
	snprintf(reply, sizeof reply, "250 2.1.0 %0200d sender ok\r\n", 3);
	CHECK(strlen(mail) > SMTP_CARRY_SMALL && strlen(reply) > SMTP_CARRY_SMALL);
	for (int split = 0; split <= 1; split++) {
		struct smtp_session *s = start(true);
		S(s, "220 mx\r\n");
		C(s, "EHLO c\r\n");
		S(s, "250 mx\r\n");
		if (split) {
			feed_bytes_but_last(s, true, mail);
			CHECK_INT(stats.line_bufs_big, 1);   /* mid-line: one lent */
			CHECK_INT(stats.line_bufs_small, 0); /* the small one went back */
			CHECK(held(s) >= SMTP_LINE_MAX + 1);
			C(s, "\n");
			CHECK_INT(stats.line_bufs_big, 0);
			feed_bytes_but_last(s, false, reply);
			CHECK_INT(stats.line_bufs_big, 1);
			S(s, "\n");
		} else {
			C(s, mail);
			S(s, reply);
		}
		CHECK_INT(stats.line_bufs_big + stats.line_bufs_small, 0);
		CHECK_INT(stats.line_bufs_big_peak, split);
		CHECK_INT(stats.line_bufs_small_peak, split);
		C(s, "RCPT TO:<b@example.net>\r\n");
		S(s, "250 ok\r\n");
		finish(s);
		CHECK_INT(stats.lines_no_buffer, 0);
		CHECK_INT(n_txn, 1);
		CHECK_STR(txns[0].mailfrom, "sender@example.org");
		CHECK_INT(txns[0].rcpt_accepted, 1);
		CHECK_INT(stats.unmatched_replies, 0);
	}
}

/* No whole-line buffer free: a cut line keeps what its small buffer holds
 * (command and path come first) and is counted; a line that lies whole in
 * its segment needs no buffer at all. With no buffer of any kind a cut line
 * keeps nothing, and is counted; the session goes on. */
static void test_line_pool_empty(void)
{
	struct smtp_line_pool *small_only = smtp_line_pool_create(2, 0);
	static char rcpt[400];
	snprintf(rcpt, sizeof rcpt, "RCPT TO:<rcpt@example.net> ORCPT=rfc822;%0200d\r\n", 5);
	struct smtp_session *s = start_with(true, small_only);
	S(s, "220 mx\r\n");
	C(s, "MAIL FROM:<a@x.jp> ENVID=0000000000000000000000000000000000000000000000000000000000"
	     "00000000000000000000000000000000000000000000000000000000000000000000000000000\r\n");
	CHECK_INT(stats.lines_no_buffer, 0); /* whole in its segment */
	S(s, "250 ok\r\n");
	feed_split(s, true, rcpt, 1);
	S(s, "250 ok\r\n");
	finish(s);
	CHECK_INT(stats.lines_no_buffer, 1);
	CHECK_INT(stats.lines_too_long, 0);
	CHECK_INT(stats.line_bufs_small_peak, 1);
	CHECK_INT(stats.line_bufs_big_peak, 0);
	CHECK_INT(n_txn, 1);
	CHECK_STR(txns[0].mailfrom, "a@x.jp");
	CHECK_STR(txns[0].rcpt[0], "rcpt@example.net");
	CHECK_INT(txns[0].rcpt_accepted, 1);

	/* The first piece carried is already longer than a small buffer. */
	s = start_with(true, small_only);
	S(s, "220 mx\r\n");
	C(s, "MAIL FROM:<a@x.jp>\r\n");
	smtp_feed(s, env_for(s), true, (const uint8_t *)rcpt, 150, 1);
	C(s, rcpt + 150);
	S(s, "250 ok\r\n250 ok\r\n");
	finish(s);
	CHECK_INT(stats.lines_no_buffer, 1);
	CHECK_INT(n_txn, 1);
	CHECK_STR(txns[0].rcpt[0], "rcpt@example.net");

	/* A line once cut keeps nothing more, even when a buffer frees up
	 * before it ends: it never has a hole. Session b holds the only
	 * whole-line buffer while a's reply is cut, then gives it back. */
	struct smtp_line_pool *one_big = smtp_line_pool_create(4, 1);
	static char head[201];
	snprintf(head, sizeof head, "250 %0196d", 0);
	s = start_with(true, one_big);
	struct smtp_session *b = session_with(true, one_big);
	S(s, "220 mx\r\n");
	C(s, "MAIL FROM:<a@x.jp>\r\n");
	S(b, head);
	S(s, head);
	S(b, "\r\n");
	CHECK_INT(stats.line_bufs_big, 0);
	S(s, "TAIL\r\n");
	finish(s);
	smtp_end(b, env_for(b), 2000);
	destroy(b);
	CHECK_INT(stats.lines_no_buffer, 1);
	CHECK_INT(n_txn, 1);
	CHECK_INT(strlen(txns[0].last_reply), SMTP_CARRY_SMALL);
	CHECK(strncmp(txns[0].last_reply, head, SMTP_CARRY_SMALL) == 0);
	smtp_line_pool_destroy(one_big);

	/* Past SMTP_LINE_MAX and cut for want of a buffer: counted once each. */
	static char longline[2000 + 3];
	memset(longline, 'A', 2000);
	memcpy(longline + 2000, "\r\n", 3);
	s = start_with(true, small_only);
	feed_split(s, true, longline, 100);
	C(s, "MAIL FROM:<a@x.jp>\r\n");
	finish(s);
	CHECK_INT(stats.lines_too_long, 1);
	CHECK_INT(stats.lines_no_buffer, 1);
	CHECK_INT(n_txn, 1);
	smtp_line_pool_destroy(small_only);

	s = start_with(true, NULL);
	S(s, "220 mx\r\n");
	C(s, "MAIL FROM:<a@x.jp>\r\n");
	feed_split(s, true, "RCPT TO:<b@y.org>\r\n", 5); /* kept nothing */
	C(s, "RCPT TO:<c@y.org>\r\n");
	S(s, "250 ok\r\n500 what\r\n250 ok\r\n");
	finish(s);
	CHECK_INT(stats.lines_no_buffer, 1);
	CHECK_INT(n_txn, 1);
	CHECK_INT(txns[0].rcpt_total, 1);
	CHECK_STR(txns[0].rcpt[0], "c@y.org");
	CHECK_INT(txns[0].rcpt_accepted, 1);
	CHECK_STR(txns[0].last_reply, "250 ok");
}

/* Every string at its bound at once: the store grows class by class to the
 * sum of the bounds and no further, keeps that capacity for the next
 * transaction, and is freed with the session. */
static void test_store_to_its_bound(void)
{
	const size_t store_max = SMTP_HELO_MAX + 1 + 2 * (SMTP_MECH_MAX + 1) +
				 2 * (SMTP_USER_MAX + 1) + SMTP_PATH_MAX + 1 + SMTP_RCPT_ARENA +
				 2 * SMTP_RCPT_KEEP_MAX + SMTP_REPLY_MAX + 1 +
				 4 /* the count of relayed recipients not kept */;
	static char line[2048], helo[SMTP_HELO_MAX + 1], user[SMTP_USER_MAX + 1];
	static char path[SMTP_PATH_MAX + 1], wire[1024], reply[SMTP_REPLY_MAX + 100];
	static unsigned char sasl[512];
	const char *mech = "SCRAM-SHA-256-PLUS-XYZW";
	CHECK_INT(strlen(mech), SMTP_MECH_MAX);

	/* The struct's budget: every open connection has one (106k at once in
	 * the 100k-session benchmark), what it holds is in the store. */
	CHECK(smtp_session_sizeof() <= 168);
	struct smtp_session *s = start(true);
	CHECK_INT(held(s), 0);
	S(s, "220 mx\r\n");
	memset(helo, 'h', SMTP_HELO_MAX);
	snprintf(line, sizeof line, "EHLO %s\r\n", helo);
	C(s, line);
	S(s, "250 mx\r\n");
	/* SCRAM's client-first message carries the user (RFC 5802) */
	memset(user, 'u', SMTP_USER_MAX);
	int sn = snprintf((char *)sasl, sizeof sasl, "n,,n=%s,r=nonce", user);
	b64(sasl, (size_t)sn, wire);
	snprintf(line, sizeof line, "AUTH %s %s\r\n", mech, wire);
	C(s, line);
	S(s, "235 2.7.0 ok\r\n");
	memset(path, 'p', 64);
	path[64] = '@';
	memset(path + 65, 'd', SMTP_PATH_MAX - 65);
	snprintf(line, sizeof line, "MAIL FROM:<%s>\r\n", path);
	C(s, line);
	S(s, "250 ok\r\n");
	/* 100 recipients that fill the arena exactly: 96 of 40 bytes and 4 of
	 * 39, each with its NUL */
	size_t last = held(s);
	unsigned grew = 0;
	for (int i = 0; i < SMTP_RCPT_KEEP_MAX; i++) {
		snprintf(line, sizeof line, "RCPT TO:<r%03d@%0*d>\r\n", i, i < 96 ? 35 : 34, 0);
		C(s, line);
		S(s, i % 2 ? "251 ok\r\n" : "250 ok\r\n");
		CHECK(held(s) >= last);
		grew += held(s) > last;
		last = held(s);
	}
	CHECK(grew >= 5); /* class by class, per command */
	memcpy(reply, "250 ", 4);
	memset(reply + 4, 'r', SMTP_REPLY_MAX + 50);
	memcpy(reply + 4 + SMTP_REPLY_MAX + 50, "\r\n", 3);
	C(s, "NOOP\r\n");
	S(s, reply);
	/* The AUTH attempt's own slots went when it succeeded: a second
	 * attempt (refused) fills them again, and with them every slot. */
	CHECK(held(s) < store_max);
	snprintf(line, sizeof line, "AUTH %s %s\r\n", mech, wire);
	C(s, line);
	CHECK_INT(held(s), store_max);
	S(s, "535 5.7.8 no\r\n");
	CHECK_INT(held(s), store_max);     /* the room is kept for the next use */
	/* One more recipient is over the bound and costs nothing. */
	C(s, "RCPT TO:<over@example.org>\r\n");
	S(s, "250 ok\r\n");
	CHECK_INT(stats.rcpt_over_keep, 1);
	CHECK_INT(held(s), store_max);
	/* The next transaction starts empty, and the room the first one
	 * needed went back when its record was written: what is left is the
	 * session's strings (HELO, AUTH: 537 B) and the second record's. */
	C(s, "MAIL FROM:<second@example.org>\r\n");
	S(s, "250 ok\r\n");
	C(s, "RCPT TO:<x@example.net>\r\n");
	S(s, "250 ok\r\n");
	CHECK(held(s) >= 537 + 19 + 14 + 2 + 7);
	CHECK(held(s) < 1024);
	CHECK_INT(n_txn, 1);
	struct seen_txn *t = &txns[0];
	CHECK_STR(t->helo, helo);
	CHECK_STR(t->auth_user, user);
	CHECK_STR(t->auth_mech, mech);
	CHECK_STR(t->mailfrom, path);
	CHECK_INT(t->n_rcpt, SMTP_RCPT_KEEP_MAX);
	CHECK_INT(t->rcpt_total, SMTP_RCPT_KEEP_MAX + 1);
	snprintf(line, sizeof line, "r000@%035d", 0);
	CHECK_STR(t->rcpt[0], line);
	CHECK_INT(t->rcpt_code[0], 250);
	CHECK_INT(t->rcpt_code[SMTP_RCPT_KEEP_MAX - 1], 251);
	CHECK_STR(t->last_reply, "250 ok");
	smtp_end(s, env_for(s), 2000);
	CHECK_INT(held(s), 0);
	CHECK_INT(stats.store_bytes, 0);
	CHECK(stats.store_peak >= store_max);
	destroy(s);
	CHECK_INT(n_txn, 2);
	CHECK_STR(txns[1].mailfrom, "second@example.org");
	CHECK_INT(txns[1].n_rcpt, 1);
	CHECK_STR(txns[1].rcpt[0], "x@example.net");
	CHECK_STR(txns[1].auth_user, user);
}

/* 100 RCPTs in one segment, then their 100 replies in one: the queue grows
 * from its few inline entries to SMTP_PENDING_MAX without dropping any,
 * every reply pairs with its recipient, and the queue goes with the
 * session. */
/* Blocks of memory a session holds, its struct included. */
static void count_block(void *arg, const void *p, size_t n)
{
	(void)p;
	(void)n;
	++*(unsigned *)arg;
}

static unsigned blocks(const struct smtp_session *s)
{
	unsigned n = 0;
	smtp_session_memory(s, env_for(s), count_block, &n);
	return n;
}

/* The session's extension (struct ext in smtp.c): a burst longer than the
 * inline queue moves into it and grows there; records that a pipelined
 * MAIL FROM closed wait in it, also while the queue grows under them; it
 * goes with the last reply, or with the connection. Every reply must pair
 * with its own command across each move, and nothing may stay behind
 * (ASan finds a leak, held() a miscount). */
static void test_ext_queue_and_closing(void)
{
	static char buf[4096];
	struct smtp_session *s = start(true);
	S(s, "220 mx ESMTP\r\n");
	C(s, "EHLO c\r\n");
	S(s, "250-mx\r\n250-PIPELINING\r\n250 CHUNKING\r\n");
	CHECK_INT(blocks(s), 2); /* the struct, the store (helo) */

	/* MAIL and five RCPT, three of them answered, then 35 RCPT and DATA:
	 * the inline queue is full with its oldest entry in the middle when
	 * it moves into the extension, which then grows again */
	size_t o = (size_t)snprintf(buf, sizeof buf, "MAIL FROM:<burst@x.jp>\r\n");
	for (int i = 0; i < 5; i++)
		o += (size_t)snprintf(buf + o, sizeof buf - o, "RCPT TO:<r%d@y.org>\r\n", i);
	C(s, buf);
	CHECK_INT(blocks(s), 2);
	S(s, "250 ok\r\n250 ok 0\r\n550 no 1\r\n");
	o = 0;
	for (int i = 5; i < 40; i++)
		o += (size_t)snprintf(buf + o, sizeof buf - o, "RCPT TO:<r%d@y.org>\r\n", i);
	snprintf(buf + o, sizeof buf - o, "DATA\r\n");
	C(s, buf);
	CHECK_INT(blocks(s), 3); /* and the extension */
	CHECK_INT(held(s), stats.store_bytes);
	o = 0;
	for (int i = 2; i < 40; i++)
		o += (size_t)snprintf(buf + o, sizeof buf - o, "%s %d\r\n",
				      i % 3 == 1 ? "550 no" : "250 ok", i);
	S(s, buf);
	CHECK_INT(blocks(s), 3); /* DATA still waits */
	S(s, "354 go\r\n");
	CHECK_INT(blocks(s), 2); /* answered: the extension is gone */
	C(s, "Subject: burst\r\n\r\nx\r\n.\r\n");
	S(s, "250 queued burst\r\n");
	CHECK_INT(n_txn, 1);
	CHECK_INT(txns[0].rcpt_total, 40);
	CHECK_INT(txns[0].n_rcpt, 40);
	CHECK_INT(txns[0].rcpt_rejected, 13);
	CHECK_INT(txns[0].rcpt_accepted, 27);
	for (int i = 0; i < 40; i++)
		CHECK_INT(txns[0].rcpt_code[i], i % 3 == 1 ? 550 : 250);
	CHECK_INT(txns[0].data_code, 250);
	CHECK_STR(txns[0].last_reply, "250 queued burst");
	CHECK_STR(txns[0].subject, "burst");

	/* Three transactions in one flight (RFC 3030): the first two close
	 * while their replies are on their way and wait in the extension; the
	 * third's MAIL FROM is the ninth command, so the queue moves into the
	 * extension under them. */
	C(s, "MAIL FROM:<a@x.jp>\r\nRCPT TO:<a1@y.org>\r\nRCPT TO:<a2@y.org>\r\n"
	     "BDAT 14 LAST\r\nSubject: A\r\n\r\n"
	     "MAIL FROM:<b@x.jp>\r\nRCPT TO:<b1@y.org>\r\nRCPT TO:<b2@y.org>\r\n"
	     "BDAT 14 LAST\r\nSubject: B\r\n\r\n"
	     "MAIL FROM:<c@x.jp>\r\nRCPT TO:<c1@y.org>\r\nRCPT TO:<c2@y.org>\r\n"
	     "BDAT 14 LAST\r\nSubject: C\r\n\r\n");
	/* the struct, its store, the extension, two closing records and theirs */
	CHECK_INT(blocks(s), 7);
	CHECK_INT(held(s), stats.store_bytes);
	S(s, "250 ok a\r\n250 ok\r\n550 no a2\r\n250 queued A\r\n"
	     "250 ok b\r\n250 ok\r\n250 ok\r\n554 failed B\r\n"
	     "250 ok c\r\n550 no c1\r\n250 ok\r\n250 queued C\r\n");
	CHECK_INT(blocks(s), 2);
	CHECK_INT(held(s), stats.store_bytes);
	CHECK_INT(n_txn, 4);
	CHECK_INT(stats.records_early, 0);
	static const char *const from[] = { "a@x.jp", "b@x.jp", "c@x.jp" };
	static const char *const last[] = { "250 queued A", "554 failed B", "250 queued C" };
	static const char *const subject[] = { "A", "B", "C" };
	static const uint16_t code[3][2] = { { 250, 550 }, { 250, 250 }, { 550, 250 } };
	for (unsigned i = 0; i < 3 && 1 + i < n_txn; i++) {
		const struct seen_txn *t = &txns[1 + i];
		testlib_current = subject[i];
		CHECK_STR(t->mailfrom, from[i]);
		CHECK_INT(t->depth, 2 + i);
		CHECK_INT(t->n_rcpt, 2);
		CHECK_INT(t->rcpt_code[0], code[i][0]);
		CHECK_INT(t->rcpt_code[1], code[i][1]);
		CHECK_INT(t->rcpt_accepted, (code[i][0] == 250) + (code[i][1] == 250));
		CHECK_INT(t->data_code, i == 1 ? 554 : 250);
		CHECK_STR(t->last_reply, last[i]);
		CHECK_STR(t->subject, subject[i]);
	}
	testlib_current = "test_ext_queue_and_closing";

	/* The connection ends with a closing record and a grown queue in the
	 * extension: both records are written, everything is freed. */
	C(s, "MAIL FROM:<d@x.jp>\r\nRCPT TO:<d1@y.org>\r\nBDAT 3 LAST\r\nabc"
	     "MAIL FROM:<e@x.jp>\r\nRCPT TO:<e1@y.org>\r\nRCPT TO:<e2@y.org>\r\n"
	     "RCPT TO:<e3@y.org>\r\nRCPT TO:<e4@y.org>\r\nRCPT TO:<e5@y.org>\r\n");
	CHECK_INT(blocks(s), 5);
	smtp_end(s, env_for(s), 2000);
	CHECK_INT(blocks(s), 1);
	CHECK_INT(held(s), 0);
	CHECK_INT(stats.store_bytes, 0);
	destroy(s);
	for (int i = 0; i < POOL_MSG; i++)
		CHECK(!msg_taken[i]);
	CHECK_INT(n_txn, 6);
	CHECK_STR(txns[4].mailfrom, "d@x.jp");
	CHECK_INT(txns[4].data_code, 0);
	CHECK_STR(txns[4].last_reply, "(null)");
	CHECK_STR(txns[5].mailfrom, "e@x.jp");
	CHECK_INT(txns[5].rcpt_total, 5);
	CHECK_INT(txns[5].depth, 6);
}

static void test_pipelined_100_rcpts(void)
{
	static char batch[SMTP_RCPT_KEEP_MAX * 40], replies[SMTP_RCPT_KEEP_MAX * 20];
	CHECK_INT(SMTP_RCPT_KEEP_MAX, SMTP_PENDING_MAX); /* the batch is both bounds */
	struct smtp_session *s = start(true);
	S(s, "220 mx\r\n");
	C(s, "EHLO c\r\n");
	S(s, "250-mx\r\n250 PIPELINING\r\n");
	C(s, "MAIL FROM:<bulk@x.jp>\r\n");
	S(s, "250 ok\r\n");
	size_t b = 0, r = 0;
	unsigned rejected = 0;
	for (int i = 0; i < SMTP_RCPT_KEEP_MAX; i++) {
		b += (size_t)sprintf(batch + b, "RCPT TO:<r%d@d%d.example>\r\n", i, i);
		r += (size_t)sprintf(replies + r, "%s\r\n", i % 7 == 3 ? "550 5.1.1 no" : "250 2.1.5 ok");
		rejected += i % 7 == 3;
	}
	size_t before = held(s);
	C(s, batch);
	CHECK(held(s) >= before + SMTP_PENDING_MAX * 4); /* 4-byte entries, all there */
	CHECK_INT(stats.pending_overflow, 0);
	S(s, replies);
	C(s, "DATA\r\n");
	S(s, "354 go\r\n");
	C(s, "Subject: bulk\r\n\r\nx\r\n.\r\n");
	S(s, "250 queued\r\n");
	C(s, "QUIT\r\n");
	S(s, "221 bye\r\n");
	/* every command answered and the record written: neither the grown
	 * queue nor the recipients' room outlives them (HELO and the last
	 * reply stay, with a little room: 80 B) */
	CHECK(held(s) < 128);
	CHECK_INT(stats.unmatched_replies, 0);
	CHECK_INT(n_txn, 1);
	struct seen_txn *t = &txns[0];
	CHECK_INT(t->rcpt_total, SMTP_RCPT_KEEP_MAX);
	CHECK_INT(t->n_rcpt, SMTP_RCPT_KEEP_MAX);
	CHECK_INT(t->rcpt_rejected, rejected);
	CHECK_INT(t->rcpt_accepted, SMTP_RCPT_KEEP_MAX - rejected);
	for (int i = 0; i < SMTP_RCPT_KEEP_MAX; i++)
		CHECK_INT(t->rcpt_code[i], i % 7 == 3 ? 550 : 250);
	CHECK_STR(t->rcpt[7], "r7@d7.example");
	CHECK_STR(t->subject, "bulk");
	CHECK_STR(t->last_reply, "250 queued");
	finish(s);
	CHECK_INT(n_txn, 1);
	CHECK_INT(stats.store_bytes, 0); /* finish ended it: nothing held */
}

/* AUTH lines cut by TCP are carried in pooled buffers: when the line ends,
 * is lost in a gap, or the connection ends before it does, nothing of the
 * secret is left in the session or in the pool's free buffers. */
static void test_carried_secret_wiped(void)
{
	static char line[1200], wire[1100];
	static unsigned char sasl[800];
	const char *pw = "Pa55-carried-secret";
	/* a long authzid: the line outgrows the small buffer */
	memset(sasl, 'z', 400);
	size_t n = 400;
	sasl[n++] = 0;
	memcpy(sasl + n, "alice@pref.example.jp", 21);
	n += 21;
	sasl[n++] = 0;
	memcpy(sasl + n, pw, strlen(pw));
	n += strlen(pw);
	b64(sasl, n, wire);
	const char *tail = wire + strlen(wire) - 24; /* the password, encoded */
	snprintf(line, sizeof line, "AUTH PLAIN %s\r\n", wire);
	for (size_t step = 1; step <= 64; step *= 8) {
		struct smtp_session *s = start(true);
		S(s, "220 mx\r\n");
		C(s, "EHLO c\r\n");
		S(s, "250 AUTH PLAIN LOGIN\r\n");
		feed_bytes_but_last(s, true, line);
		CHECK(session_has(s, tail)); /* carried: the scan does see it */
		C(s, "\n");
		CHECK(!session_has(s, tail));
		CHECK(!session_has(s, pw));
		CHECK_INT(stats.line_bufs_big_peak, 1);
		S(s, "235 ok\r\n");
		CHECK_INT(n_auth, 1);
		CHECK_STR(auth_users[0], "alice@pref.example.jp");

		/* LOGIN: the password line alone, cut in pieces */
		C(s, "AUTH LOGIN\r\n");
		S(s, "334 VXNlcm5hbWU6\r\n");
		C(s, "Ym9i\r\n");
		S(s, "334 UGFzc3dvcmQ6\r\n");
		feed_split(s, true, "c2VjcmV0LWxvZ2luLXB3\r\n", step);
		CHECK(!session_has(s, "c2VjcmV0LWxvZ2luLXB3"));
		CHECK(!session_has(s, "secret-login-pw"));
		S(s, "235 ok\r\n");

		/* a gap inside an AUTH line */
		C(s, "AUTH PLAIN ");
		C(s, wire);
		CHECK(session_has(s, tail));
		smtp_gap(s, env_for(s), true, 100, 1);
		CHECK(!session_has(s, tail));
		S(s, "535 no\r\n");

		/* the connection ends inside one */
		C(s, "AUTH PLAIN ");
		C(s, wire);
		CHECK(session_has(s, tail));
		smtp_end(s, env_for(s), 2000);
		CHECK(!session_has(s, tail));
		CHECK_INT(held(s), 0);
		CHECK_INT(stats.line_bufs_small + stats.line_bufs_big, 0);
		destroy(s);
		for (int i = 0; i < POOL_MSG; i++)
			CHECK(!msg_taken[i]);
	}
}

int main(void)
{
	for (int i = 0; i < POOL_MSG; i++)
		pool_msg[i] = message_create(NULL);
	lines = smtp_line_pool_create(2, 2);
	RUN(test_basic_transaction);
	RUN(test_pipelining);
	RUN(test_pipelined_transactions);
	RUN(test_rset_and_mail_flush);
	RUN(test_dot_stuffing_any_split);
	RUN(test_bdat);
	RUN(test_bdat_invalid_sizes);
	RUN(test_starttls);
	RUN(test_auth_forms);
	RUN(test_auth_one_sided);
	RUN(test_one_sided_depth);
	RUN(test_gap_in_data_resyncs);
	RUN(test_gap_then_354);
	RUN(test_record_fields_do_not_leak);
	RUN(test_http_connect_tunnel);
	RUN(test_not_smtp);
	RUN(test_line_bound);
	RUN(test_pending_bound);
	RUN(test_rcpt_bound);
	RUN(test_rcpt_relayed_past_the_bound);
	RUN(test_address_forms);
	RUN(test_client_before_banner);
	RUN(test_line_split_every_byte);
	RUN(test_line_pool_empty);
	RUN(test_store_to_its_bound);
	RUN(test_pipelined_100_rcpts);
	RUN(test_ext_queue_and_closing);
	RUN(test_carried_secret_wiped);
	for (int i = 0; i < POOL_MSG; i++)
		message_destroy(pool_msg[i]);
	RUN(test_unterminated_long_line_counted);
	smtp_line_pool_destroy(lines);
	return TEST_EXIT();
}

/* test-detect.c — sensor/detect.c's per-message rules, which need no
 * counters (open_relay, display_spoof), the configuration of rules, and the
 * cooldowns of the counting rules (on the local counts of a counters whose
 * Redis is never reachable). */
#include "testlib.h"

#include <jansson.h>

#include "detect.h"
#include "fixture-record.h"

static struct counters_alert seen[16];
static char seen_rule[16][32], seen_sev[16][16], seen_entity[16][128], seen_window[16][16];
static char seen_extra[16][16384];
static int nseen;

/* The strings of an alert are borrowed: keep copies. */
static void on_alert(void *ctx, const struct counters_alert *a)
{
	(void)ctx;
	if (nseen >= 16)
		abort();
	snprintf(seen_rule[nseen], sizeof seen_rule[0], "%s", a->rule);
	snprintf(seen_sev[nseen], sizeof seen_sev[0], "%s", a->severity);
	snprintf(seen_entity[nseen], sizeof seen_entity[0], "%s", a->entity);
	snprintf(seen_window[nseen], sizeof seen_window[0], "%s", a->window);
	snprintf(seen_extra[nseen], sizeof seen_extra[0], "%s", a->extra ? a->extra : "");
	seen[nseen++] = *a;
}

/* alert i's extra, parsed by jansson (an independent parser); NULL if it
 * is not a JSON object */
static json_t *extra_of(int i)
{
	json_error_t e;
	json_t *j = json_loads(seen_extra[i], 0, &e);
	if (!j || !json_is_object(j)) {
		fprintf(stderr, "extra is not a JSON object (%s): %.200s...\n", e.text,
			seen_extra[i]);
		json_decref(j);
		return NULL;
	}
	return j;
}

static const char *extra_str(json_t *j, const char *key)
{
	return json_string_value(json_object_get(j, key));
}

static bool escalated(int i)
{
	return strstr(seen_extra[i], "\"escalated\":true") != NULL;
}

static struct detect *make(struct detect_config *dc, const char *local, const char *trusted,
			   const char *protected)
{
	char err[256];
	struct rw_options o;
	memset(&o, 0, sizeof o);
	o.local_domains = (char *)local;
	o.trusted_networks = (char *)trusted;
	o.protected_domains = (char *)protected;
	o.alert_cooldown = 3600;
	CHECK_INT(detect_config_load(dc, &o, err, sizeof err), 0);
	nseen = 0;
	return detect_create(dc, NULL, on_alert, NULL);
}

static const char *foreign[] = { "victim@example.org", "x@pref.example.jp" };

static void test_open_relay(void)
{
	struct detect_config dc;
	struct detect *d = make(&dc, "pref.example.jp", "10.0.0.0/8", "");
	struct fixture fx = { 0 };
	static const uint16_t ok[] = { 250, 250 }, refused[] = { 554, 250 };
	/* trusted network: allowed to relay */
	detect_record(d, fixture_build(&fx, "10.1.0.80", "Subject: a\r\n", NULL, "w@x.org",
				       foreign, ok, 2));
	CHECK_INT(nseen, 0);
	/* authenticated: allowed */
	detect_record(d, fixture_build(&fx, "203.0.113.7", "Subject: a\r\n", "u@pref.example.jp",
				       "u@pref.example.jp", foreign, ok, 2));
	CHECK_INT(nseen, 0);
	/* outside, no AUTH, the foreign recipient refused, the local one accepted */
	detect_record(d, fixture_build(&fx, "203.0.113.7", "Subject: a\r\n", NULL, "s@x.org",
				       foreign, refused, 2));
	CHECK_INT(nseen, 0);
	/* outside, no AUTH, foreign recipient accepted: relaying */
	detect_record(d, fixture_build(&fx, "203.0.113.7", "Subject: Re: Can I trust you?\r\n",
				       NULL, "s@x.org", foreign, ok, 2));
	CHECK_INT(nseen, 1);
	CHECK_STR(seen_rule[0], "open_relay");
	CHECK_STR(seen_sev[0], "critical");      /* a fake reply */
	CHECK_STR(seen_entity[0], "203.0.113.7");
	/* again within the cooldown: not repeated */
	detect_record(d, fixture_build(&fx, "203.0.113.7", "Subject: b\r\n", NULL, "s@x.org",
				       foreign, ok, 2));
	CHECK_INT(nseen, 1);
	CHECK_INT(detect_get_stats(d)->suppressed, 1);
	detect_destroy(d);
	/* without local_domains the rule cannot know what is foreign: off */
	d = make(&dc, "", "10.0.0.0/8", "");
	detect_record(d, fixture_build(&fx, "203.0.113.7", "Subject: b\r\n", NULL, "s@x.org",
				       foreign, ok, 2));
	CHECK_INT(nseen, 0);
	detect_destroy(d);
	message_destroy(fx.msg);
}

static void test_display_spoof(void)
{
	struct detect_config dc;
	struct detect *d = make(&dc, "pref.example.jp", "", "s-kantan.example.jp");
	struct fixture fx = { 0 };
	static const uint16_t ok[] = { 250 };
	detect_record(d, fixture_build(&fx, "10.1.2.3",
		"From: \"helpdesk@s-kantan.example.jp\" <nobody@badhost.example>\r\n", "a@x.jp",
		"a@x.jp", foreign, ok, 1));
	CHECK_INT(nseen, 1);
	CHECK_STR(seen_rule[0], "display_spoof");
	CHECK_STR(seen_sev[0], "high");          /* a protected domain */
	detect_record(d, fixture_build(&fx, "10.1.2.3",
		"From: \"boss@elsewhere.example\" <nobody@badhost.example>\r\n", "b@x.jp",
		"b@x.jp", foreign, ok, 1));
	CHECK_INT(nseen, 2);
	CHECK_STR(seen_sev[1], "medium");        /* just another domain */
	detect_record(d, fixture_build(&fx, "10.1.2.3", "From: \"Alice\" <alice@x.jp>\r\n",
				       "c@x.jp", "c@x.jp", foreign, ok, 1));
	CHECK_INT(nseen, 2);                     /* an ordinary display name */
	detect_destroy(d);
	message_destroy(fx.msg);
}

/* Sender-specified routing (a local part holding @, % or !) is relaying in
 * Postfix's reject_unauth_destination, whatever domain follows the last @;
 * a trailing dot does not make a local domain foreign. */
static void test_open_relay_routed(void)
{
	struct detect_config dc;
	struct detect *d = make(&dc, "pref.example.jp", "10.0.0.0/8", "");
	struct fixture fx = { 0 };
	static const uint16_t ok[] = { 250 }, refused[] = { 550 };
	static const char *routed[] = {
		"victim%foreign.com@pref.example.jp", "foreign.com!victim@pref.example.jp",
		"victim@foreign.com@pref.example.jp", "\"victim@foreign.com\"@pref.example.jp",
		"a%b%foreign.com@pref.example.jp",
	};
	char client[32];
	for (size_t i = 0; i < sizeof routed / sizeof routed[0]; i++) {
		int before = nseen;
		snprintf(client, sizeof client, "203.0.113.%zu", 10 + i);
		/* refused: nothing relayed */
		detect_record(d, fixture_build(&fx, client, "Subject: a\r\n", NULL, "s@x.org",
					       &routed[i], refused, 1));
		CHECK_INT(nseen, before);
		detect_record(d, fixture_build(&fx, client, "Subject: a\r\n", NULL, "s@x.org",
					       &routed[i], ok, 1));
		CHECK_INT(nseen, before + 1);
		if (nseen != before + 1)
			continue;
		CHECK_STR(seen_rule[before], "open_relay");
		json_t *j = extra_of(before);
		CHECK(j != NULL);
		/* the evidence names where the sender routed it, not our domain */
		json_t *doms = json_object_get(j, "rcpt_domains");
		CHECK_INT(json_array_size(doms), 1);
		CHECK_STR(json_string_value(json_array_get(doms, 0)), "foreign.com");
		json_decref(j);
	}
	/* local recipients, one with the root's trailing dot */
	static const char *local[] = { "x@pref.example.jp.", "x@mail.pref.example.jp.",
				       "x@pref.example.jp" };
	for (size_t i = 0; i < sizeof local / sizeof local[0]; i++) {
		detect_record(d, fixture_build(&fx, "198.51.100.9", "Subject: a\r\n", NULL,
					       "s@x.org", &local[i], ok, 1));
		CHECK_INT(nseen, (int)(sizeof routed / sizeof routed[0]));
	}
	detect_destroy(d);
	message_destroy(fx.msg);
}

/* Display names are decoded UTF-8: CJK brackets and spaces end the address. */
static void test_display_spoof_cjk(void)
{
	struct detect_config dc;
	struct detect *d = make(&dc, "pref.example.jp", "", "s-kantan.jp");
	struct fixture fx = { 0 };
	static const uint16_t ok[] = { 250 };
	detect_record(d, fixture_build(&fx, "10.1.2.3",
		"From: \"【helpdesk@s-kantan.jp】\" <attacker@elsewhere.com>\r\n", "a@x.jp",
		"attacker@elsewhere.com", foreign, ok, 1));
	CHECK_INT(nseen, 1);
	CHECK_STR(seen_sev[0], "high");
	json_t *j = extra_of(0);
	CHECK(j != NULL);
	CHECK_STR(extra_str(j, "claimed"), "helpdesk@s-kantan.jp");
	CHECK(json_is_true(json_object_get(j, "protected_domain")));
	json_decref(j);
	/* a legitimate sender whose display name is its address and its name
	 * (two accounts: one alert would hold back the next for the cooldown) */
	detect_record(d, fixture_build(&fx, "10.1.2.3",
		"From: \"yamada@pref.example.jp\u3000山田太郎\" <yamada@pref.example.jp>\r\n",
		"y1@pref.example.jp", "yamada@pref.example.jp", foreign, ok, 1));
	detect_record(d, fixture_build(&fx, "10.1.2.3",
		"From: =?UTF-8?B?eWFtYWRhQHByZWYuZXhhbXBsZS5qcOOAgeWxseeUsOWkqumDjg==?= "
		"<yamada@pref.example.jp>\r\n", "y2@pref.example.jp", "yamada@pref.example.jp",
		foreign, ok, 1));
	CHECK_INT(nseen, 1);
	detect_destroy(d);
	message_destroy(fx.msg);
}

/* A From longer than the value kept as sent (MESSAGE_FIELD_MAX): its
 * address is the angle-addr at the end of the whole field, however much
 * display name comes before it (padded with text, white space, folding,
 * comments and quoted strings holding '<', '>' and ','), up to the header
 * block's bound. It was lost with the cut, and the spoof with it. */
static char *padded_from(const char *before, char pad, size_t padlen, const char *after)
{
	size_t nb = strlen(before), na = strlen(after);
	char *s = malloc(nb + padlen + na + 1);

	if (!s)
		abort();
	memcpy(s, before, nb);
	for (size_t i = 0; i < padlen; i++)
		/* a folded line every 70 bytes when padding with spaces */
		s[nb + i] = pad == '\n' ? (i % 72 == 70 ? '\r' : i % 72 == 71 ? '\n' : ' ') : pad;
	memcpy(s + nb + padlen, after, na + 1);
	return s;
}

static void test_display_spoof_padded(void)
{
	struct detect_config dc;
	struct detect *d = make(&dc, "pref.example.jp", "", "s-kantan.jp");
	struct fixture fx = { 0 };
	static const uint16_t ok[] = { 250 };
	static const struct {
		const char *before;
		char pad;
		size_t padlen;
		const char *after;
		const char *claimed;  /* NULL: no alert */
	} cases[] = {
		/* the display name padded past the 1 KB kept as sent */
		{ "From: \"helpdesk@s-kantan.jp ", 'x', 2000, "\" <attacker@elsewhere.com>\r\n",
		  "helpdesk@s-kantan.jp" },
		/* folded, past the 8 KB of one unfolded field, with a comment and
		 * quoted strings holding angle brackets and commas */
		{ "From: helpdesk@s-kantan.jp (\"<helpdesk@s-kantan.jp>\" \\) x",
		  '\n', 20000, " ) \"<a@s-kantan.jp>, >\" <attacker@elsewhere.com>\r\n",
		  "helpdesk@s-kantan.jp" },
		/* white space before the claimed address: shown as one space */
		{ "From: \"", ' ', 3000, "helpdesk@s-kantan.jp\" <attacker@elsewhere.com>\r\n",
		  "helpdesk@s-kantan.jp" },
		/* an encoded display name, near the header block's 64 KB */
		{ "From: =?UTF-8?B?44CQaGVscGRlc2tAcy1rYW50YW4uanDjgJE=?= ", '\n', 60000,
		  "<Attacker@Elsewhere.COM (comment)>\r\n", "helpdesk@s-kantan.jp" },
		/* the same within the 1 KB kept: white space pushed the address
		 * out of the display buffer */
		{ "From: \"", '\t', 900, "helpdesk@s-kantan.jp\" <attacker@elsewhere.com>\r\n",
		  "helpdesk@s-kantan.jp" },
		/* two angle-addrs (not valid): the last is the address */
		{ "From: helpdesk@s-kantan.jp <helpdesk@s-kantan.jp> ", 'w', 10,
		  " <attacker@elsewhere.com>\r\n", "helpdesk@s-kantan.jp" },
		/* the sender's own address in a long display name: no spoof */
		{ "From: \"yamada@pref.example.jp ", 'y', 2000, "\" <yamada@pref.example.jp>\r\n",
		  NULL },
		/* a long list: the first mailbox is the author */
		{ "From: \"Alice\" <alice@pref.example.jp>, \"", 'z', 2000,
		  "helpdesk@s-kantan.jp\" <attacker@elsewhere.com>\r\n", NULL },
	};
	char account[32];
	int want = 0;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *h = padded_from(cases[i].before, cases[i].pad, cases[i].padlen,
				      cases[i].after);
		snprintf(account, sizeof account, "a%zu@pref.example.jp", i);
		detect_record(d, fixture_build(&fx, "10.1.2.3", h, account, account, foreign,
					       ok, 1));
		free(h);
		if (!cases[i].claimed) {
			if (nseen != want)
				fprintf(stderr, "case %zu: alerted\n", i);
			CHECK_INT(nseen, want);
			continue;
		}
		want++;
		if (nseen != want) {
			fprintf(stderr, "case %zu: no alert\n", i);
			CHECK_INT(nseen, want);
			want = nseen;
			continue;
		}
		CHECK_STR(seen_rule[want - 1], "display_spoof");
		CHECK_STR(seen_sev[want - 1], "high");
		json_t *j = extra_of(want - 1);
		CHECK(j != NULL);
		CHECK_STR(extra_str(j, "claimed"), cases[i].claimed);
		CHECK_STR(extra_str(j, "actual"), "attacker@elsewhere.com");
		json_decref(j);
	}
	detect_destroy(d);
	message_destroy(fx.msg);
}

/* Every string in an alert's evidence is capped (256 bytes of JSON text),
 * and the evidence is JSON whatever the wire put into it: escaping makes a
 * control character six bytes (\u0001), so bounded input grew past the
 * buffer and the cut was no JSON. */
static void test_extra_bounded(void)
{
	struct detect_config dc;
	struct detect *d = make(&dc, "pref.example.jp", "", "s-kantan.jp");
	struct fixture fx = { 0 };
	static const uint16_t ok[SMTP_RCPT_KEEP_MAX] = { 250, 250, 250, 250, 250, 250, 250,
		250, 250, 250, 250, 250, 250, 250, 250, 250, 250, 250, 250, 250, 250, 250 };
	static char body[32 * 1024], from[1200];
	size_t n = 0;
	/* 16 attachment names (MESSAGE_ATTACH_KEEP_MAX) of 250 bytes of 0x01 */
	for (int i = 0; i < 16; i++) {
		n += (size_t)snprintf(body + n, sizeof body - n,
			"--b\r\nContent-Type: application/octet-stream\r\n"
			"Content-Disposition: attachment;\r\n filename*=UTF-8''");
		for (int k = 0; k < 250; k++)
			n += (size_t)snprintf(body + n, sizeof body - n, "%%01");
		n += (size_t)snprintf(body + n, sizeof body - n, "\r\n\r\nx\r\n");
	}
	snprintf(body + n, sizeof body - n, "--b--\r\n");
	fx.body = body;
	/* a From of tabs and quotes around the claimed address */
	n = (size_t)snprintf(from, sizeof from, "From: \"helpdesk@s-kantan.jp ");
	for (; n < 900; n++)
		from[n] = n % 2 ? '\t' : '\\';
	snprintf(from + n, sizeof from - n, "\" <attacker@elsewhere.com>\r\n"
		 "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n");
	detect_record(d, fixture_build(&fx, "10.1.2.3", from, "a@x.jp", "attacker@elsewhere.com",
				       foreign, ok, 1));
	CHECK_INT(nseen, 1);
	json_t *j = extra_of(0);
	CHECK(j != NULL);
	CHECK_STR(extra_str(j, "claimed"), "helpdesk@s-kantan.jp");
	CHECK(json_is_true(json_object_get(j, "protected_domain")));
	json_t *att = json_object_get(j, "attachments");
	CHECK_INT(json_array_size(att), 16);
	for (size_t i = 0; i < json_array_size(att); i++)
		CHECK(json_string_length(json_array_get(att, i)) > 0 &&
		      json_string_length(json_array_get(att, i)) <= 256 / 6);
	CHECK(extra_str(j, "from") && strlen(extra_str(j, "from")) <= 256);
	CHECK(json_object_get(j, "truncated") == NULL);  /* capped, it all fits */
	json_decref(j);

	/* open_relay: 22 foreign recipients, 20 of their domains listed, each
	 * ~300 bytes of control characters */
	static char dom[22][SMTP_PATH_MAX];
	static const char *rcpt[22];
	for (int i = 0; i < 22; i++) {
		n = (size_t)snprintf(dom[i], sizeof dom[i], "v@");
		for (; n < 300; n++)
			dom[i][n] = (char)(1 + (n + (size_t)i) % 30);
		dom[i][n] = 0;
		rcpt[i] = dom[i];
	}
	fx.body = NULL;
	detect_record(d, fixture_build(&fx, "203.0.113.7", "Subject: a\r\n", NULL, "s@x.org",
				       rcpt, ok, 22));
	CHECK_INT(nseen, 2);
	CHECK_STR(seen_rule[1], "open_relay");
	j = extra_of(1);
	CHECK(j != NULL);
	CHECK_INT(json_integer_value(json_object_get(j, "foreign_rcpts")), 22);
	CHECK_INT(json_array_size(json_object_get(j, "rcpt_domains")), 20);
	CHECK(json_object_get(j, "truncated") == NULL);
	json_decref(j);
	CHECK_INT(detect_get_stats(d)->extra_truncated, 0);
	detect_destroy(d);
	message_destroy(fx.msg);
}

static void test_rule_settings(void)
{
	struct detect_config dc;
	struct rw_options o;
	char err[256];
	memset(&o, 0, sizeof o);
	o.alert_cooldown = 60;
	struct rw_rule_kv kv[] = {
		{ "account_burst", "rcpts_10m", "250", "f.conf:3" },
		{ "display_spoof", "enabled", "no", "f.conf:7" },
	};
	memcpy(o.rules, kv, sizeof kv);
	o.n_rules = 2;
	CHECK_INT(detect_config_load(&dc, &o, err, sizeof err), 0);
	CHECK(dc.param[RULE_ACCOUNT_BURST][0] == 250);
	CHECK(dc.param[RULE_ACCOUNT_BURST][1] == 500);  /* untouched default */
	CHECK(!dc.enabled[RULE_DISPLAY_SPOOF]);
	struct rw_rule_kv bad[] = {
		{ "account_burst", "rcpts_10m", "0", "f.conf:3" },
		{ "account_burst", "speed", "1", "f.conf:4" },
		{ "no_rule", "x", "1", "f.conf:5" },
		{ "open_relay", "enabled", "maybe", "f.conf:6" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		o.rules[0] = bad[i];
		o.n_rules = 1;
		err[0] = 0;
		CHECK(detect_config_load(&dc, &o, err, sizeof err) < 0);
		CHECK(strncmp(err, bad[i].where, strlen(bad[i].where)) == 0); /* names file:line */
	}
}

/* A counters that never reaches Redis: its view is this sensor's own
 * deltas, exactly, which is all the counting rules need here. */
static struct counters *offline_counters(void)
{
	char err[256];
	struct counters_config cc = {
		.url = "unix:///nonexistent/relaywatch-test-detect.sock",
		.sensor_name = "test", .flush_interval_s = 1, .max_pending = 10000,
		.stream_maxlen = 1000, .cooldown_s = 3600,
	};
	struct counters *c = counters_create(&cc, err, sizeof err);
	CHECK(c != NULL);
	return c;
}

static struct detect *make_counting(struct detect_config *dc, struct counters *c,
				    const struct rw_rule_kv *kv, unsigned nkv)
{
	char err[256];
	struct rw_options o;
	memset(&o, 0, sizeof o);
	o.alert_cooldown = 3600;
	if (nkv)
		memcpy(o.rules, kv, nkv * sizeof *kv);
	o.n_rules = nkv;
	CHECK_INT(detect_config_load(dc, &o, err, sizeof err), 0);
	nseen = 0;
	return detect_create(dc, c, on_alert, NULL);
}

#define T0 1700000000000000ull

static void auth_fail(struct detect *d, struct counters *c, uint64_t *ts, const char *user)
{
	*ts += 1000000;
	counters_auth(c, *ts, "198.51.100.23", user, false);
	detect_auth(d, *ts, "198.51.100.23", user, false);
}

/* auth_failures measures either failures or accounts tried: each escalates
 * against itself. Four failures for a, one each for b..e (5 accounts: the
 * first alert, value 5), two more for a (10 failures): a new alert on the
 * failures, not an "escalation" of the accounts. */
static void test_cooldown_per_measure_auth(void)
{
	struct detect_config dc;
	struct counters *c = offline_counters();
	struct detect *d = make_counting(&dc, c, NULL, 0);
	uint64_t ts = T0;
	static const char *const seq[] = { "a", "a", "a", "a", "b", "c", "d", "e", "a" };
	for (size_t i = 0; i < sizeof seq / sizeof seq[0]; i++)
		auth_fail(d, c, &ts, seq[i]);
	CHECK_INT(nseen, 1);
	CHECK(seen[0].value == 5);               /* accounts tried */
	CHECK(!escalated(0));
	auth_fail(d, c, &ts, "a");
	CHECK_INT(nseen, 2);
	CHECK(seen[1].value == 10);              /* failures */
	CHECK(!escalated(1));
	CHECK_INT(detect_get_stats(d)->escalated, 0);
	detect_destroy(d);

	/* failures_10m = 8: the failures' first alert (8) is below twice the
	 * accounts' (5), and was taken for a repeat of it */
	struct rw_rule_kv kv[] = { { "auth_failures", "failures_10m", "8", "t.conf:1" } };
	d = make_counting(&dc, c, kv, 1);
	ts += 3600 * 1000000ull;                 /* a new 10 minutes */
	static const char *const seq2[] = { "a", "b", "c", "d", "e", "a", "a" };
	for (size_t i = 0; i < sizeof seq2 / sizeof seq2[0]; i++)
		auth_fail(d, c, &ts, seq2[i]);
	CHECK_INT(nseen, 1);
	CHECK(seen[0].value == 5);
	auth_fail(d, c, &ts, "a");
	CHECK_INT(nseen, 2);
	CHECK(seen[1].value == 8);
	CHECK(!escalated(1));
	/* the failures now escalate against 8 */
	auth_fail(d, c, &ts, "a");
	CHECK_INT(nseen, 2);
	for (int i = 0; i < 7; i++)
		auth_fail(d, c, &ts, "a");
	CHECK_INT(nseen, 3);
	CHECK(seen[2].value == 16);
	CHECK(escalated(2));
	detect_destroy(d);
	counters_destroy(c, 0, NULL);
}

/* account_burst over 10 minutes and over 1 hour are two measures: 6
 * recipients in the hour (rcpts_1h = 6) alert, then 10 in 10 minutes
 * (rcpts_10m = 10) alert again although 10 < 2 x 6. */
static void test_cooldown_per_window_account(void)
{
	struct detect_config dc;
	struct counters *c = offline_counters();
	struct rw_rule_kv kv[] = {
		{ "account_burst", "rcpts_10m", "10", "t.conf:1" },
		{ "account_burst", "rcpts_1h", "6", "t.conf:2" },
	};
	struct detect *d = make_counting(&dc, c, kv, 2);
	struct fixture fx = { 0 };
	static const char *const to[] = { "p@example.org", "q@example.org", "r@example.org",
					  "s@example.org" };
	static const uint16_t ok[] = { 250, 250, 250, 250 };
	static const unsigned n[] = { 4, 2, 2, 2 };
	for (int i = 0; i < 4; i++) {
		struct rw_record *r = fixture_build(&fx, "10.1.2.15", "Subject: x\r\n",
						    "u@pref.example.jp", "u@pref.example.jp", to,
						    ok, n[i]);
		r->ts_us += (uint64_t)i * 1000000;
		counters_record(c, r);
		detect_record(d, r);
		if (i == 1) {
			CHECK_INT(nseen, 1);
			CHECK_STR(seen_window[0], "1h");
			CHECK(seen[0].value == 6);
		}
	}
	CHECK_INT(nseen, 2);
	CHECK_STR(seen_window[1], "10m");
	CHECK(seen[1].value == 10);
	CHECK(!escalated(1));
	detect_destroy(d);
	counters_destroy(c, 0, NULL);
	message_destroy(fx.msg);
}

/* tls_blind_burst counts sessions or bytes: 1000 bytes (bytes_10m = 1000)
 * alert, then 3 sessions (sessions_10m = 3) alert too, 3 being no repeat of
 * the 1000 bytes. */
static void test_cooldown_per_measure_tls(void)
{
	struct detect_config dc;
	struct counters *c = offline_counters();
	struct rw_rule_kv kv[] = {
		{ "tls_blind_burst", "sessions_10m", "3", "t.conf:1" },
		{ "tls_blind_burst", "bytes_10m", "1000", "t.conf:2" },
	};
	struct detect *d = make_counting(&dc, c, kv, 2);
	uint64_t ts = T0;
	for (int i = 0; i < 3; i++) {
		ts += 1000000;
		counters_session(c, ts, "10.1.2.20", true);
		counters_tls_bytes(c, ts, "10.1.2.20", i == 0 ? 1000 : 10);
		detect_session(d, ts, "10.1.2.20", true);
	}
	CHECK_INT(nseen, 2);
	CHECK(seen[0].value == 1000);
	CHECK(seen[1].value == 3);
	CHECK(!escalated(1));
	detect_destroy(d);
	counters_destroy(c, 0, NULL);
}

/* An escalation restarts the cooldown (as alert.lua does): failures alert
 * at 10, escalate a minute later at 20; an hour and 30 s after the first,
 * 10 again are inside the escalation's cooldown; two hours after, outside. */
static void test_cooldown_restarts_at_escalation(void)
{
	struct detect_config dc;
	struct counters *c = offline_counters();
	struct detect *d = make_counting(&dc, c, NULL, 0);
	static const uint64_t start_s[] = { 0, 60, 3630, 7320 };
	static const int want_seen[] = { 1, 2, 2, 3 };
	for (int k = 0; k < 4; k++) {
		uint64_t ts = T0 + start_s[k] * 1000000;
		for (int i = 0; i < 10; i++)
			auth_fail(d, c, &ts, "a");
		CHECK_INT(nseen, want_seen[k]);
	}
	CHECK(seen[1].value == 20);
	CHECK(escalated(1));
	CHECK(seen[2].value == 10);
	CHECK(!escalated(2));
	/* 11..19 in the second minute, the 10 of the third copy */
	CHECK_INT(detect_get_stats(d)->suppressed, 9 + 1);
	detect_destroy(d);
	counters_destroy(c, 0, NULL);
}

/* The prefecture's weak password (June 2022), guessed from many addresses:
 * 12 failures for bosai-heli, one from each of 12 clients (under every
 * per-client threshold), then the login from a 13th address. The account
 * had 12 failures in 10 minutes before the success: that is the hijack,
 * whatever address the guesses came from. A user's own typos followed by
 * a login from another device count the same, as they did from one. */
static void test_auth_success_after_spread_failures(void)
{
	struct detect_config dc;
	struct counters *c = offline_counters();
	struct detect *d = make_counting(&dc, c, NULL, 0);
	uint64_t ts = T0;
	char client[32];
	const char *user = "bosai-heli@pref.example.jp";
	for (int i = 0; i < 12; i++) {
		ts += 20 * 1000000ull;
		snprintf(client, sizeof client, "198.51.100.%d", 10 + i);
		counters_auth(c, ts, client, user, false);
		detect_auth(d, ts, client, user, false);
	}
	CHECK_INT(nseen, 0);                     /* one failure per client: nothing yet */
	ts += 20 * 1000000ull;
	counters_auth(c, ts, "203.0.113.99", user, true);
	detect_auth(d, ts, "203.0.113.99", user, true);
	CHECK_INT(nseen, 1);
	if (nseen == 1) {
		CHECK_STR(seen_rule[0], "auth_failures");
		CHECK_STR(seen_sev[0], "critical");
		CHECK_STR(seen_entity[0], user);
		CHECK(seen[0].value == 12);
		json_t *j = extra_of(0);
		CHECK(j != NULL);
		CHECK_INT(json_integer_value(json_object_get(j, "account_failures")), 12);
		CHECK_INT(json_integer_value(json_object_get(j, "failures")), 0);
		json_decref(j);
	}
	/* two typos, then the login from another device: under success_after */
	ts += 20 * 1000000ull;
	counters_auth(c, ts, "10.1.2.30", "yamada@pref.example.jp", false);
	detect_auth(d, ts, "10.1.2.30", "yamada@pref.example.jp", false);
	counters_auth(c, ts, "10.1.2.30", "yamada@pref.example.jp", false);
	detect_auth(d, ts, "10.1.2.30", "yamada@pref.example.jp", false);
	counters_auth(c, ts + 1000000, "10.1.2.31", "yamada@pref.example.jp", true);
	detect_auth(d, ts + 1000000, "10.1.2.31", "yamada@pref.example.jp", true);
	CHECK_INT(nseen, 1);
	detect_destroy(d);
	counters_destroy(c, 0, NULL);
}

/* One message through the counters and the rules, at ts. */
static void send_at(struct detect *d, struct counters *c, struct fixture *fx, uint64_t ts,
		    const char *client, const char *headers, const char *auth_user,
		    const char *mailfrom, const char *rcpt)
{
	static const uint16_t ok[] = { 250 };
	struct rw_record *r = fixture_build(fx, client, headers, auth_user, mailfrom, &rcpt,
					    ok, 1);
	r->ts_us = ts;
	counters_record(c, r);
	detect_record(d, r);
}

/* fingerprint_burst holds back "a popular subject from many real accounts".
 * A MAIL FROM without AUTH is no account anyone proved to own: three
 * unauthenticated mails to a local mailbox with the spam's subject and
 * made-up senders made the hijacked account's burst look like four
 * accounts' thread, and it never fired. Only authenticated accounts count
 * towards max_accounts; several real accounts still hold it back. */
static void test_fingerprint_decoy_senders(void)
{
	struct detect_config dc;
	struct counters *c = offline_counters();
	struct rw_rule_kv kv[] = {
		{ "fingerprint_burst", "msgs_10m", "20", "t.conf:1" },
		{ "account_burst", "enabled", "no", "t.conf:2" },
	};
	struct detect *d = make_counting(&dc, c, kv, 2);
	struct fixture fx = { 0 };
	const char *subj = "Subject: HELLO!DEAR!GOOD NEWS TO YOU,\r\n";
	uint64_t ts = T0;
	static const char *const decoys[] = { "a@decoy.example", "b@decoy.example",
					      "c@decoy.example" };
	for (int i = 0; i < 3; i++)
		send_at(d, c, &fx, ts += 1000000, "198.51.100.7", subj, NULL, decoys[i],
			"koho@pref.example.jp");
	for (int i = 0; i < 30; i++)
		send_at(d, c, &fx, ts += 1000000, "198.51.100.23", subj,
			"bosai-heli@pref.example.jp", "bosai-heli@pref.example.jp",
			"victim@example.org");
	CHECK_INT(nseen, 1);
	if (nseen == 1) {
		CHECK_STR(seen_rule[0], "fingerprint_burst");
		CHECK(seen[0].value == 20);
		json_t *j = extra_of(0);
		CHECK(j != NULL);
		CHECK_INT(json_integer_value(json_object_get(j, "accounts")), 1);
		json_decref(j);
	}
	detect_destroy(d);

	/* four staff accounts on one subject (a thread, a circular): held back */
	d = make_counting(&dc, c, kv, 2);
	ts += 3600 * 1000000ull;
	const char *subj2 = "Subject: =?UTF-8?B?5Lya6K2w44Gu5Lu2?=\r\n";
	static const char *const staff[] = { "a@pref.example.jp", "b@pref.example.jp",
					     "c@pref.example.jp", "d@pref.example.jp" };
	for (int i = 0; i < 40; i++)
		send_at(d, c, &fx, ts += 1000000, "10.1.2.21", subj2, staff[i % 4], staff[i % 4],
			"x@example.org");
	CHECK_INT(nseen, 0);
	detect_destroy(d);
	counters_destroy(c, 0, NULL);
	message_destroy(fx.msg);
}

/* The first alert of an account must not hide a worse one: a display name
 * claiming some other domain (medium: mailing lists, "via" names) held
 * back, for the whole cooldown, the same account's Emotet-style claim of a
 * protected domain (high). Each is its own measure now, as in alert.lua's
 * key; repeats of either stay held back. */
static void test_display_spoof_medium_then_high(void)
{
	struct detect_config dc;
	struct detect *d = make(&dc, "pref.example.jp", "", "s-kantan.example.jp");
	struct fixture fx = { 0 };
	static const uint16_t ok[] = { 250 };
	const char *acct = "soumu@kankyo-kosha.example.jp";
	detect_record(d, fixture_build(&fx, "203.0.113.50",
		"From: \"boss@elsewhere.example\" <nobody@badhost.example>\r\n", acct, acct,
		foreign, ok, 1));
	detect_record(d, fixture_build(&fx, "203.0.113.50",
		"From: \"helpdesk@s-kantan.example.jp\" <nobody@badhost.example>\r\n", acct,
		acct, foreign, ok, 1));
	detect_record(d, fixture_build(&fx, "203.0.113.50",
		"From: \"helpdesk@s-kantan.example.jp\" <nobody@badhost.example>\r\n", acct,
		acct, foreign, ok, 1));
	detect_record(d, fixture_build(&fx, "203.0.113.50",
		"From: \"boss@elsewhere.example\" <nobody@badhost.example>\r\n", acct, acct,
		foreign, ok, 1));
	CHECK_INT(nseen, 2);
	CHECK_STR(seen_sev[0], "medium");
	CHECK_STR(seen_sev[1], "high");
	CHECK_INT(detect_get_stats(d)->suppressed, 2);
	detect_destroy(d);
	message_destroy(fx.msg);
}

/* account_burst measures 10 minutes and 1 hour, each with its cooldown,
 * but the hour was only looked at while the 10 minutes were under their
 * threshold: an account that crossed rcpts_10m early and then kept just
 * under twice it (no escalation) sent for the rest of the hour behind that
 * one alert, whatever its hour added up to. Three recipients a minute with
 * rcpts_10m = 20, rcpts_1h = 50: the 10 minutes alert at 20 and never
 * double; the hour alerts at 50 and escalates at 100. */
static void test_account_burst_hour_behind_10m(void)
{
	struct detect_config dc;
	struct counters *c = offline_counters();
	struct rw_rule_kv kv[] = {
		{ "account_burst", "rcpts_10m", "20", "t.conf:1" },
		{ "account_burst", "rcpts_1h", "50", "t.conf:2" },
		{ "fingerprint_burst", "enabled", "no", "t.conf:3" },
	};
	struct detect *d = make_counting(&dc, c, kv, 3);
	struct fixture fx = { 0 };
	uint64_t ts = T0;
	for (int i = 0; i < 40 * 3; i++)
		send_at(d, c, &fx, ts += 20 * 1000000ull, "198.51.100.23",
			"Subject: HELLO!DEAR!GOOD NEWS TO YOU,\r\n", "bosai-heli@pref.example.jp",
			"bosai-heli@pref.example.jp", "victim@example.org");
	CHECK_INT(nseen, 3);
	CHECK_STR(seen_window[0], "10m");
	CHECK(seen[0].value == 20);
	if (nseen == 3) {
		CHECK_STR(seen_window[1], "1h");
		CHECK(seen[1].value == 50);
		CHECK_STR(seen_window[2], "1h");
		CHECK(seen[2].value == 100);
		CHECK(escalated(2));
	}
	detect_destroy(d);
	counters_destroy(c, 0, NULL);
	message_destroy(fx.msg);
}

int main(void)
{
	RUN(test_open_relay);
	RUN(test_display_spoof);
	RUN(test_open_relay_routed);
	RUN(test_display_spoof_cjk);
	RUN(test_display_spoof_padded);
	RUN(test_extra_bounded);
	RUN(test_rule_settings);
	RUN(test_cooldown_per_measure_auth);
	RUN(test_cooldown_per_window_account);
	RUN(test_cooldown_per_measure_tls);
	RUN(test_cooldown_restarts_at_escalation);
	RUN(test_auth_success_after_spread_failures);
	RUN(test_fingerprint_decoy_senders);
	RUN(test_display_spoof_medium_then_high);
	RUN(test_account_burst_hour_behind_10m);
	return TEST_EXIT();
}

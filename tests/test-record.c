/* test-record.c — sensor/record.c: derived fields, Zeek's address split,
 * uids, and a JSON object jansson reads back. */
#include "testlib.h"

#include <jansson.h>

#include "fixture-record.h"

static char parts[16][256];
static int nparts;

static void collect(void *ctx, const char *s, size_t n)
{
	(void)ctx;
	snprintf(parts[nparts++], sizeof parts[0], "%.*s", (int)n, s);
}

static void test_split_like_zeek(void)
{
	nparts = 0;
	record_split_list("\"Doe, John\" <j@x.jp>, c@y.org ,undisclosed-recipients:;, <z@w>", collect,
			  NULL);
	CHECK_INT(nparts, 3);
	CHECK_STR(parts[0], "\"Doe, John\" <j@x.jp>");
	CHECK_STR(parts[1], "c@y.org");
	CHECK_STR(parts[2], "<z@w>");
	nparts = 0;
	record_split_list("undisclosed-recipients:;", collect, NULL);
	CHECK_INT(nparts, 0);
}

static void test_derived_fields(void)
{
	struct fixture fx = { 0 };
	static const char *rc[] = { "a@ex.org", "b@ex.net" };
	static const uint16_t codes[] = { 250, 550 };
	struct rw_record *r = fixture_build(&fx, "203.0.113.7",
		"From: \"helpdesk@s-kantan.example.jp\" <nobody@badhost.example>\r\n"
		"Subject: =?UTF-8?B?UmU6IOS8muitsOOBruS7tg==?=\r\n",
		NULL, "Nobody@BadHost.example", rc, codes, 2);
	CHECK_STR(r->account, "nobody@badhost.example");    /* MAIL FROM, lower-case */
	CHECK(!r->authenticated);
	CHECK_STR(r->sender_domain, "badhost.example");
	CHECK(r->has_subject);
	CHECK(r->fake_reply);                               /* "Re:" without In-Reply-To */
	CHECK(r->display_spoof);
	CHECK_STR(r->spoof_claimed, "helpdesk@s-kantan.example.jp");
	CHECK_STR(r->orig_h, "203.0.113.7");
	/* authenticated: the AUTH user is the account */
	r = fixture_build(&fx, "10.1.2.3", "Subject: hello\r\nIn-Reply-To: <x@y>\r\n",
			  "Alice@Pref.Example.JP", "other@x.jp", rc, codes, 1);
	CHECK_STR(r->account, "alice@pref.example.jp");
	CHECK(r->authenticated);
	CHECK(!r->fake_reply);
	CHECK(!r->display_spoof);
	/* authenticated by a mechanism that hides the user (NTLM, GSSAPI): the
	 * MAIL FROM address is the account, and the session still counts as
	 * authenticated (it was "" and no account: the account rules and
	 * counters never saw such a session) */
	r = fixture_build(&fx, "10.1.2.3", "Subject: hello\r\n", NULL, "<Alice@Example.COM>", rc,
			  codes, 1);
	fx.txn.auth_ok = true;
	record_build(&fx.rec, &fx.ends, fx.uid, &fx.txn); /* again, with auth_ok */
	CHECK_STR(r->account, "alice@example.com");
	CHECK(r->authenticated);
	message_destroy(fx.msg);
}

static void test_uid(void)
{
	struct fixture fx = { 0 };
	static const char *rc[] = { "a@ex.org" };
	static const uint16_t codes[] = { 250 };
	struct rw_record *r = fixture_build(&fx, "192.0.2.1", "Subject: x\r\n", NULL, "a@b", rc,
					    codes, 1);
	char uid[RECORD_UID_MAX];
	snprintf(uid, sizeof uid, "%s", r->uid);
	CHECK_INT(strlen(uid), 18);
	CHECK(uid[0] == 'C');
	r = fixture_build(&fx, "192.0.2.1", "Subject: x\r\n", NULL, "a@b", rc, codes, 1);
	CHECK_STR(r->uid, uid);                 /* the same flow: the same uid */
	fx.flow.serial = 2;
	record_flow_uid(&fx.flow, &fx.ends, fx.uid);
	CHECK(strcmp(fx.uid, uid) != 0);        /* another flow: another */
	message_destroy(fx.msg);
}

static void test_json(void)
{
	struct fixture fx = { 0 };
	static const char *rc[] = { "a@ex.org", "b@ex.net" };
	static const uint16_t codes[] = { 250, 250 };
	struct rw_record *r = fixture_build(&fx, "198.51.100.23",
		"From: A <a@pref.example.jp>\r\nTo: x@y.org, \"Q, R\" <q@r.org>\r\n"
		"Subject: =?ISO-2022-JP?B?GyRCJDMkcyRLJEEkTxsoQg==?= \xff\r\n",
		"a@pref.example.jp", "a@pref.example.jp", rc, codes, 2);
	static char buf[RECORD_JSON_MAX];
	bool overflow;
	size_t n = record_to_json(r, buf, sizeof buf, &overflow);
	CHECK(!overflow);
	CHECK_INT(strlen(buf), n);
	json_error_t e;
	json_t *j = json_loads(buf, 0, &e);
	CHECK(j != NULL);
	CHECK_STR(json_string_value(json_object_get(j, "subject")), "こんにちは \xef\xbf\xbd");
	CHECK_INT(json_array_size(json_object_get(j, "to")), 2);
	CHECK_INT(json_array_size(json_object_get(j, "rcptto")), 2);
	CHECK_STR(json_string_value(json_object_get(j, "account")), "a@pref.example.jp");
	CHECK(json_is_null(json_object_get(j, "cc")));             /* absent: null */
	CHECK(json_is_null(json_object_get(j, "attachments")));
	CHECK(json_is_null(json_object_get(j, "shape")));          /* not gibberish */
	CHECK(json_is_false(json_object_get(j, "tls")));
	CHECK_INT(json_integer_value(json_object_get(j, "trans_depth")), 1);
	json_decref(j);
	message_destroy(fx.msg);
}

int main(void)
{
	RUN(test_split_like_zeek);
	RUN(test_derived_fields);
	RUN(test_uid);
	RUN(test_json);
	return TEST_EXIT();
}

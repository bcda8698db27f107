/* test-address.c — sensor/address.c: mailboxes, SMTP paths, display spoofs. */
#include "address.h"
#include "rfc2047.h"
#include "testlib.h"

static struct mailbox mb;

static bool parse(const char *v)
{
	return address_parse_mailbox(v, strlen(v), &mb);
}

/* Expect `v` to parse to display `d` and address `a`. */
#define CHECK_MB(v, d, a) do { \
	CHECK(parse(v)); \
	CHECK_STR(mb.display, d); \
	CHECK_STR(mb.addr, a); \
	} while (0)

static void test_name_addr(void)
{
	CHECK_MB("\"Alice Example\" <alice@Example.COM>", "Alice Example", "alice@example.com");
	CHECK_STR(mb.domain, "example.com");
	CHECK_MB("Alice <a@x.jp>", "Alice", "a@x.jp");
	CHECK_MB("  Alice   Example  <a@x.jp>", "Alice Example", "a@x.jp");
	CHECK_MB("<a@x.jp>", "", "a@x.jp");
	CHECK_MB("Alice (work) <a@x.jp>", "Alice", "a@x.jp");
	CHECK_MB("< a @ x.jp >", "", "a@x.jp");
	CHECK_MB("\"a \\\"quoted\\\" name\" <q@x.jp>", "a \"quoted\" name", "q@x.jp");
	CHECK_MB("\"Doe, John\" <j@d.example>", "Doe, John", "j@d.example");
	/* unquoted comma in the name: shown the way clients show it */
	CHECK_MB("Doe, John <j@d.example>", "Doe, John", "j@d.example");
	CHECK_MB("\"Alice\" <a@x.jp>, \"Bob\" <b@y.jp>", "Alice", "a@x.jp");
	/* obsolete route (RFC 5322 §4.4) */
	CHECK_MB("Al <@r1.example,@r2.example:a@x.jp>", "Al", "a@x.jp");
}

static void test_addr_spec(void)
{
	CHECK_MB("a@x.jp", "", "a@x.jp");
	CHECK_MB("A@X.JP (Alice)", "Alice", "a@x.jp");
	CHECK_MB("a@x.jp, b@y.jp", "", "a@x.jp");
	CHECK_MB("\"John Doe\"@example.com", "", "\"john doe\"@example.com");
	CHECK_STR(mb.domain, "example.com");
	CHECK(!parse(""));
	CHECK(!parse("Alice"));
	CHECK(!parse("<>"));
	CHECK_STR(mb.domain, "");
	CHECK_MB("Alice <>, Bob <b@y.jp>", "Bob", "b@y.jp");
}

static void test_group(void)
{
	CHECK_MB("Friends: Alice <a@x.jp>, Bob <b@y.jp>;", "Alice", "a@x.jp");
	CHECK_MB("Friends:a@x.jp;", "", "a@x.jp");
	CHECK(!parse("undisclosed-recipients:;"));
	CHECK_MB("undisclosed-recipients:;, Carol <c@z.jp>", "Carol", "c@z.jp");
}

static void test_encoded_display(void)
{
	CHECK_MB("=?UTF-8?B?5bGx55Sw5aSq6YOO?= <taro@x.jp>", "山田太郎", "taro@x.jp");
	/* encoded-word inside quotes: forbidden by RFC 2047 §5, sent by Outlook */
	CHECK_MB("\"=?ISO-2022-JP?B?GyRCJDMkcyRLJEEkTxsoQg==?=\" <a@x.jp>", "こんにちは", "a@x.jp");
	CHECK_MB("=?utf-8?q?Jos=C3=A9?= =?utf-8?q?_Garc=C3=ADa?= <j@x.es>", "José García", "j@x.es");
	/* legacy "addr (Name)" with an encoded comment */
	CHECK_MB("taro@x.jp (=?UTF-8?B?5bGx55Sw?=)", "山田", "taro@x.jp");
}

static void test_over_long(void)
{
	char v[2 * ADDRESS_MAX];
	size_t n;

	/* an address longer than ADDRESS_MAX is cut, never overflowed */
	memset(v, 'a', sizeof v);
	v[0] = '<';
	v[100] = '@';
	v[sizeof v - 2] = '>';
	v[sizeof v - 1] = '\0';
	CHECK(parse(v));
	n = strlen(mb.addr);
	CHECK_INT(n, ADDRESS_MAX);
	/* a display name longer than the buffer is cut on a character boundary */
	{
		char big[3000];
		size_t o = 0;
		while (o + 3 < 2000) {
			memcpy(big + o, "日", 3);
			o += 3;
		}
		memcpy(big + o, " <a@x.jp>", 10);
		CHECK(parse(big));
		CHECK_STR(mb.addr, "a@x.jp");
		CHECK_INT(strlen(mb.display) % 3, 0);
		CHECK(strlen(mb.display) < sizeof mb.display);
	}
}

static void test_path(void)
{
	char out[ADDRESS_MAX + 1];

	CHECK(address_from_path("<a@B.example>", 13, out, sizeof out));
	CHECK_STR(out, "a@b.example");
	CHECK(!address_from_path("<>", 2, out, sizeof out));
	CHECK_STR(out, "");
	CHECK(address_from_path("<@r1,@r2:a@b.example>", 21, out, sizeof out));
	CHECK_STR(out, "a@b.example");
	CHECK(address_from_path("<a@b.example> SIZE=100 BODY=8BITMIME", 36, out, sizeof out));
	CHECK_STR(out, "a@b.example");
	CHECK(address_from_path("  a@b.example SIZE=1", 20, out, sizeof out));
	CHECK_STR(out, "a@b.example");
	CHECK(address_from_path("<\"x>y\"@b.example>", 17, out, sizeof out));
	CHECK_STR(out, "\"x>y\"@b.example");
	CHECK(!address_from_path("<> SIZE=5", 9, out, sizeof out));
	CHECK(!address_from_path("", 0, out, sizeof out));
	/* bounded: a small buffer gets a prefix */
	CHECK(address_from_path("<abcdef@x.example>", 18, out, 5));
	CHECK_STR(out, "abcd");
	/* unterminated bracket */
	CHECK(address_from_path("<a@b.example", 12, out, sizeof out));
	CHECK_STR(out, "a@b.example");
}

static void test_domain(void)
{
	CHECK_STR(address_domain("a@b.example"), "b.example");
	CHECK_STR(address_domain("\"x@y\"@b.example"), "b.example");
	CHECK_STR(address_domain("nodomain"), "");
	CHECK(address_domain_matches("mail.x.jp", "x.jp"));
	CHECK(address_domain_matches("x.jp", "x.jp"));
	CHECK(address_domain_matches("X.JP", "x.jp"));
	CHECK(address_domain_matches("x.jp.", "x.jp"));
	CHECK(!address_domain_matches("evilx.jp", "x.jp"));
	CHECK(!address_domain_matches("x.jp", "mail.x.jp"));
	CHECK(!address_domain_matches("x.jp", ""));
	CHECK(!address_domain_matches("", "x.jp"));
}

static void check_routed(const char *addr, const char *hop_expected)
{
	const char *hop = NULL;
	size_t n = 0;
	char buf[ADDRESS_MAX + 1];

	if (!hop_expected) {
		CHECK(!address_routed(addr, &hop, &n));
		return;
	}
	CHECK(address_routed(addr, &hop, &n));
	snprintf(buf, sizeof buf, "%.*s", (int)n, hop ? hop : "");
	CHECK_STR(buf, hop_expected);
}

/* Sender-specified routing: Postfix's reject_unauth_destination relays it. */
static void test_routed(void)
{
	check_routed("victim%foreign.com@pref.example.jp", "foreign.com");
	check_routed("foreign.com!victim@pref.example.jp", "foreign.com");
	check_routed("victim@foreign.com@pref.example.jp", "foreign.com");
	check_routed("\"victim@foreign.com\"@pref.example.jp", "foreign.com");
	check_routed("\"foreign.com!victim\"@pref.example.jp", "foreign.com");
	check_routed("a%b%foreign.com@pref.example.jp", "foreign.com"); /* the rightmost % */
	check_routed("a!b!victim@pref.example.jp", "a");                 /* the first hop */
	check_routed("foreign.com!victim", "foreign.com");
	check_routed("victim%@pref.example.jp", "");
	check_routed("victim@pref.example.jp", NULL);
	check_routed("v.i-c_t+i=m@pref.example.jp", NULL);
	check_routed("postmaster", NULL);
	check_routed("a@b%c.example", NULL);  /* the domain is no local part */
	check_routed("", NULL);
}

/* The Emotet thread-hijack pattern: the display name claims another domain. */
static void check_spoof(const char *from, const char *claimed_expected)
{
	char claimed[ADDRESS_MAX + 1] = "";

	CHECK(parse(from));
	if (claimed_expected) {
		CHECK(address_display_spoof(&mb, claimed, sizeof claimed));
		CHECK_STR(claimed, claimed_expected);
	} else {
		CHECK(!address_display_spoof(&mb, claimed, sizeof claimed));
	}
}

static void test_spoof(void)
{
	check_spoof("\"helpdesk@s-kantan.jp\" <attacker@evil.example>", "helpdesk@s-kantan.jp");
	check_spoof("helpdesk@s-kantan.jp <attacker@evil.example>", "helpdesk@s-kantan.jp");
	check_spoof("=?UTF-8?B?aGVscGRlc2tAcy1rYW50YW4uanA=?= <attacker@evil.example>",
		    "helpdesk@s-kantan.jp");
	/* full-width ＠ and letters, as seen in Japanese spoofs */
	check_spoof("\"ｈｅｌｐｄｅｓｋ＠ｓ－ｋａｎｔａｎ．ｊｐ\" <attacker@evil.example>",
		    "helpdesk@s-kantan.jp");
	check_spoof("\"総務課 soumu@pref.example.jp\" <x@evil.example>", "soumu@pref.example.jp");
	check_spoof("\"Taro (taro@x.jp)\" <t@evil.example>", "taro@x.jp");
	/* look-alike suffixes are not the same domain */
	check_spoof("\"info@x.jp\" <a@x.jp.evil.example>", "info@x.jp");
	check_spoof("\"info@x.jp\" <a@evilx.jp>", "info@x.jp");
	/* trailing punctuation is not part of the claimed domain */
	check_spoof("\"Support <support@bank.example>.\" <a@evil.example>", "support@bank.example");
	/* CJK brackets and punctuation around the address are not part of it */
	check_spoof("\"【helpdesk@s-kantan.jp】\" <attacker@elsewhere.com>", "helpdesk@s-kantan.jp");
	check_spoof("\"「helpdesk@s-kantan.jp」\" <attacker@elsewhere.com>", "helpdesk@s-kantan.jp");
	check_spoof("\"helpdesk@s-kantan.jp・総務課\" <attacker@elsewhere.com>",
		    "helpdesk@s-kantan.jp");
	check_spoof("\"helpdesk@s-kantan.jp\u00a0Desk\" <attacker@elsewhere.com>",
		    "helpdesk@s-kantan.jp");
	check_spoof("\"helpdesk@s-kantan.jp\u2026\" <attacker@elsewhere.com>", "helpdesk@s-kantan.jp");
	check_spoof("\"helpdesk@s-kantan.jp\U0001F4E7\" <attacker@elsewhere.com>",
		    "helpdesk@s-kantan.jp");
	check_spoof("=?UTF-8?B?44CQaGVscGRlc2tAcy1rYW50YW4uanDjgJE=?= <attacker@elsewhere.com>",
		    "helpdesk@s-kantan.jp");
	/* internationalised domain names keep their letters */
	check_spoof("\"info@例え.jp\" <a@evil.example>", "info@例え.jp");
	check_spoof("\"info@例え.jp】\" <a@evil.example>", "info@例え.jp");
	check_spoof("\"info@ｶﾀｶﾅ.jp\" <a@evil.example>", "info@ｶﾀｶﾅ.jp");
	check_spoof("\"info@佐々木.jp\" <a@evil.example>", "info@佐々木.jp");
}

static void test_not_spoof(void)
{
	check_spoof("\"Alice Example\" <a@x.jp>", NULL);
	check_spoof("\"a@x.jp\" <a@x.jp>", NULL);
	check_spoof("\"A@X.JP\" <a@x.jp>", NULL);
	check_spoof("\"Ａ＠Ｘ．ＪＰ\" <a@x.jp>", NULL);
	check_spoof("\"山田 (yamada@x.jp)\" <yamada@x.jp>", NULL);
	check_spoof("\"info@x.jp\" <info@mail.x.jp>", NULL);
	check_spoof("a@x.jp", NULL);
	check_spoof("\"Alice @ home\" <a@x.jp>", NULL);
	check_spoof("\"user@localhost\" <a@x.jp>", NULL);
	check_spoof("\"@x.jp\" <a@y.jp>", NULL);
	/* the sender's own address, then a space or a comma and a name */
	check_spoof("\"yamada@pref.example.jp\u3000山田太郎\" <yamada@pref.example.jp>", NULL);
	check_spoof("\"yamada@pref.example.jp、山田太郎\" <yamada@pref.example.jp>", NULL);
	check_spoof("\"yamada@pref.example.jp（山田）\" <yamada@pref.example.jp>", NULL);
	check_spoof("\"info@例え.jp\" <a@例え.jp>", NULL);
}

static void test_spoof_claimed_bounded(void)
{
	char claimed[8];

	CHECK(parse("\"helpdesk@s-kantan.jp\" <attacker@evil.example>"));
	CHECK(address_display_spoof(&mb, claimed, sizeof claimed));
	CHECK_STR(claimed, "helpdes");
}

/* Padding in the display name: a run of white space is one space, so the
 * name's address is still within the display buffer; a second angle-addr
 * (not valid) makes the first one name text, as message.c's reading of a
 * long From does. */
static void test_padded_name(void)
{
	char v[1024];
	size_t n = (size_t)snprintf(v, sizeof v, "\"");

	for (; n < 900; n++)
		v[n] = n % 3 ? ' ' : '\t';
	snprintf(v + n, sizeof v - n, "helpdesk@s-kantan.jp\" <attacker@evil.example>");
	CHECK_MB(v, "helpdesk@s-kantan.jp", "attacker@evil.example");
	check_spoof(v, "helpdesk@s-kantan.jp");
	CHECK_MB("\"a \t  b\" <x@y.jp>", "a b", "x@y.jp");
	CHECK_MB("helpdesk@s-kantan.jp <helpdesk@s-kantan.jp> <attacker@evil.example>",
		 "helpdesk@s-kantan.jp <helpdesk@s-kantan.jp>", "attacker@evil.example");
	check_spoof("helpdesk@s-kantan.jp <helpdesk@s-kantan.jp> <attacker@evil.example>",
		    "helpdesk@s-kantan.jp");
	CHECK_MB("\"Alice\" <a@x.jp> <>", "Alice", "a@x.jp");
	CHECK_MB("\"Alice\" <a@x.jp> \"Bob\", <b@y.jp>", "Alice", "a@x.jp");
	CHECK_MB("<a@x.jp> (Bob)", "", "a@x.jp");       /* a comment after names nothing */
	CHECK_MB("(Bob) <a@x.jp> (Carol)", "Bob", "a@x.jp");
}

int main(void)
{
	RUN(test_name_addr);
	RUN(test_addr_spec);
	RUN(test_group);
	RUN(test_encoded_display);
	RUN(test_over_long);
	RUN(test_path);
	RUN(test_domain);
	RUN(test_routed);
	RUN(test_spoof);
	RUN(test_not_spoof);
	RUN(test_spoof_claimed_bounded);
	RUN(test_padded_name);
	rfc2047_cleanup();
	return TEST_EXIT();
}

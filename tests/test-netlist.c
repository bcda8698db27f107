/* test-netlist.c — sensor/netlist.c: CIDR and domain lists. */
#include "testlib.h"

#include <arpa/inet.h>

#include "netlist.h"

static bool in(const struct cidr_list *l, const char *a)
{
	uint8_t b[16] = { 0 };
	bool v6 = strchr(a, ':') != NULL;
	inet_pton(v6 ? AF_INET6 : AF_INET, a, b);
	return cidr_list_match(l, v6, b);
}

static void test_cidrs(void)
{
	struct cidr_list l;
	char err[128];
	CHECK_INT(cidr_list_parse("10.0.0.0/8, 192.0.2.7 2001:db8::/32,172.16.0.0/12", &l, err,
				  sizeof err), 0);
	CHECK_INT(l.n, 4);
	CHECK(in(&l, "10.255.1.2"));
	CHECK(!in(&l, "11.0.0.1"));
	CHECK(in(&l, "192.0.2.7"));
	CHECK(!in(&l, "192.0.2.8"));
	CHECK(in(&l, "172.31.255.255"));
	CHECK(!in(&l, "172.32.0.0"));
	CHECK(in(&l, "2001:db8:ffff::1"));
	CHECK(!in(&l, "2001:db9::1"));
	CHECK(!in(&l, "::ffff:10.0.0.1") || true); /* mapped addresses are IPv6 here */
	CHECK_INT(cidr_list_parse("0.0.0.0/0", &l, err, sizeof err), 0);
	CHECK(in(&l, "203.0.113.1"));
	static const char *bad[] = { "10.0.0.0/33", "2001:db8::/129", "10.0.0/8", "host", "1.2.3.4/x" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECK(cidr_list_parse(bad[i], &l, err, sizeof err) < 0);
}

static void test_cidr_bound(void)
{
	/* NETLIST_MAX entries parse; one more is an error */
	static char text[NETLIST_MAX * 20];
	for (int extra = 0; extra <= 1; extra++) {
		text[0] = 0;
		for (int i = 0; i < NETLIST_MAX + extra; i++) {
			char item[24];
			snprintf(item, sizeof item, "10.%d.%d.0/24,", i / 256, i % 256);
			strcat(text, item);
		}
		struct cidr_list l;
		char err[128];
		CHECK_INT(cidr_list_parse(text, &l, err, sizeof err) < 0, extra);
	}
}

static void test_domains(void)
{
	struct domain_list l;
	char err[128];
	CHECK_INT(domain_list_parse("pref.example.jp, .City.Example.JP", &l, err, sizeof err), 0);
	CHECK(domain_list_match(&l, "pref.example.jp"));
	CHECK(domain_list_match(&l, "mail.pref.example.jp"));
	CHECK(domain_list_match(&l, "CITY.example.jp"));
	CHECK(!domain_list_match(&l, "evilpref.example.jp"));
	CHECK(!domain_list_match(&l, "pref.example.jp.evil.example"));
	CHECK(!domain_list_match(&l, "example.jp"));
	/* the root's trailing dot names the same domain, as in
	 * address_domain_matches(), on either side */
	CHECK(domain_list_match(&l, "pref.example.jp."));
	CHECK(domain_list_match(&l, "Mail.Pref.Example.JP."));
	CHECK(domain_list_match(&l, "city.example.jp.."));
	CHECK(!domain_list_match(&l, "evilpref.example.jp."));
	CHECK(!domain_list_match(&l, "."));
	CHECK(!domain_list_match(&l, ""));
	CHECK(domain_list_parse("bad domain!", &l, err, sizeof err) < 0);
	CHECK_INT(domain_list_parse("pref.example.jp.", &l, err, sizeof err), 0);
	CHECK(domain_list_match(&l, "pref.example.jp"));
	CHECK(domain_list_match(&l, "mail.pref.example.jp."));
	CHECK(!domain_list_match(&l, "example.jp"));
	CHECK(domain_list_parse(".", &l, err, sizeof err) < 0);
}

int main(void)
{
	RUN(test_cidrs);
	RUN(test_cidr_bound);
	RUN(test_domains);
	return TEST_EXIT();
}

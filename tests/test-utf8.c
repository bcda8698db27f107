/* test-utf8.c — sensor/utf8.c: RFC 3629 validity and safe cuts. */
#include "testlib.h"

#include "utf8.h"

static void test_sequences(void)
{
	static const struct { const char *s; size_t len; } cases[] = {
		{ "A", 1 }, { "\xc3\xa9", 2 }, { "\xe4\xbc\x9a", 3 }, { "\xf0\x9f\x98\x80", 4 },
		{ "\xc0\xaf", 0 },          /* overlong '/' */
		{ "\xe0\x80\xaf", 0 },      /* overlong */
		{ "\xed\xa0\x80", 0 },      /* surrogate U+D800 */
		{ "\xf4\x90\x80\x80", 0 },  /* past U+10FFFF */
		{ "\xff", 0 }, { "\x80", 0 }, { "\xe4\xbc", 0 } /* cut short */,
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		CHECK_INT(utf8_seq((const unsigned char *)cases[i].s, strlen(cases[i].s)),
			  cases[i].len);
	CHECK(utf8_valid("会議 ok", strlen("会議 ok")));
	CHECK(!utf8_valid("ok \xff", 4));
}

static void test_cut(void)
{
	const char *s = "ab会議"; /* 2 + 3 + 3 bytes */
	CHECK_INT(utf8_cut(s, 8, 8), 8);
	CHECK_INT(utf8_cut(s, 8, 7), 5); /* not inside 議 */
	CHECK_INT(utf8_cut(s, 8, 5), 5);
	CHECK_INT(utf8_cut(s, 8, 4), 2);
	CHECK_INT(utf8_cut(s, 8, 0), 0);
}

int main(void)
{
	RUN(test_sequences);
	RUN(test_cut);
	return TEST_EXIT();
}

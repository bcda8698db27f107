/* test-jsonw.c — sensor/jsonw.c: whatever bytes a string holds, the output
 * parses as JSON (checked with jansson, an independent parser) and says the
 * same thing, with invalid UTF-8 replaced rather than dropped. */
#include "testlib.h"

#include <jansson.h>

#include "jsonw.h"

static json_t *parse(const char *s)
{
	json_error_t e;
	json_t *j = json_loads(s, 0, &e);
	if (!j)
		fprintf(stderr, "not JSON (%s): %s\n", e.text, s);
	return j;
}

static void test_types_and_nesting(void)
{
	char buf[512];
	struct jsonw w;
	jsonw_init(&w, buf, sizeof buf);
	jsonw_obj_begin(&w);
	jsonw_kstr(&w, "s", "plain");
	jsonw_kstr(&w, "null", NULL);
	jsonw_kuint(&w, "u", 4611686018427387904ull); /* jansson reads int64 only */
	jsonw_kint(&w, "i", -5);
	jsonw_kbool(&w, "b", true);
	jsonw_kdouble(&w, "d", 1.5);
	jsonw_kdouble(&w, "nan", 0.0 / 0.0);
	jsonw_key(&w, "a");
	jsonw_arr_begin(&w);
	jsonw_str(&w, "x");
	jsonw_arr_begin(&w);
	jsonw_arr_end(&w);
	jsonw_obj_begin(&w);
	jsonw_obj_end(&w);
	jsonw_arr_end(&w);
	jsonw_key(&w, "raw");
	jsonw_raw(&w, "{\"k\":1}");
	jsonw_obj_end(&w);
	CHECK(!w.overflow);
	json_t *j = parse(jsonw_result(&w));
	CHECK(j != NULL);
	CHECK_STR(json_string_value(json_object_get(j, "s")), "plain");
	CHECK(json_is_null(json_object_get(j, "null")));
	CHECK(json_is_null(json_object_get(j, "nan")));
	CHECK_INT(json_integer_value(json_object_get(j, "i")), -5);
	CHECK(json_integer_value(json_object_get(j, "u")) == 4611686018427387904ll);
	CHECK_INT(json_array_size(json_object_get(j, "a")), 3);
	CHECK_INT(json_integer_value(json_object_get(json_object_get(j, "raw"), "k")), 1);
	json_decref(j);
}

static void test_every_byte(void)
{
	/* All 256 byte values in one string: valid JSON, same length in code
	 * points, invalid bytes as U+FFFD, none dropped. */
	char in[257], buf[4096];
	for (int i = 0; i < 256; i++)
		in[i] = (char)(i == 0 ? 'Z' : i);
	in[256] = 0;
	struct jsonw w;
	jsonw_init(&w, buf, sizeof buf);
	jsonw_arr_begin(&w);
	jsonw_strn(&w, in, 256);
	jsonw_arr_end(&w);
	json_t *j = parse(jsonw_result(&w));
	CHECK(j != NULL);
	const char *s = json_string_value(json_array_get(j, 0));
	/* 128 ASCII characters, then 128 invalid bytes (lone 0x80..0xff: no
	 * valid sequence in ascending order) each replaced */
	size_t cps = 0, fffd = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p & 0xc0) != 0x80)
			cps++;
		if (p[0] == 0xef && p[1] == 0xbf && p[2] == 0xbd)
			fffd++;
	}
	CHECK_INT(cps, 256);
	CHECK_INT(fffd, 128);
	json_decref(j);
}

static void test_valid_utf8_kept(void)
{
	char buf[256];
	struct jsonw w;
	jsonw_init(&w, buf, sizeof buf);
	jsonw_str(&w, "会議資料 \"quoted\" back\\slash\ttab\n");
	json_t *j = json_loads(jsonw_result(&w), JSON_DECODE_ANY, NULL);
	CHECK(j != NULL);
	CHECK_STR(json_string_value(j), "会議資料 \"quoted\" back\\slash\ttab\n");
	json_decref(j);
}

static void test_overflow_is_flagged(void)
{
	char buf[16];
	struct jsonw w;
	jsonw_init(&w, buf, sizeof buf);
	jsonw_str(&w, "0123456789abcdef");
	CHECK(w.overflow);
	CHECK(strlen(jsonw_result(&w)) < sizeof buf); /* still a C string */
	/* exactly fitting (quotes + 13 chars + NUL = 16) is not an overflow */
	jsonw_init(&w, buf, sizeof buf);
	jsonw_str(&w, "0123456789abc");
	CHECK(!w.overflow);
	CHECK_STR(jsonw_result(&w), "\"0123456789abc\"");
}

/* A capped string: for every cap, the text between the quotes is at most
 * that long, parses, and is a prefix of the whole string, cut between
 * characters (never inside \u0001, \\, a UTF-8 sequence or \ufffd). */
static void test_str_max(void)
{
	static const char in[] = "a\x01\"\\\t会議\xff\x01z";
	const char *whole = "a\x01\"\\\t会議\xef\xbf\xbd\x01z";
	char buf[256];
	for (size_t max = 0; max <= 40; max++) {
		struct jsonw w;
		jsonw_init(&w, buf, sizeof buf);
		jsonw_strn_max(&w, in, sizeof in - 1, max);
		CHECK(!w.overflow);
		CHECK(strlen(jsonw_result(&w)) <= max + 2);
		json_t *j = json_loads(jsonw_result(&w), JSON_DECODE_ANY, NULL);
		CHECK(j != NULL && json_is_string(j));
		if (!j) {
			fprintf(stderr, "max %zu: not JSON: %s\n", max, jsonw_result(&w));
			continue;
		}
		size_t n = json_string_length(j);
		CHECK(strncmp(json_string_value(j), whole, n) == 0);
		CHECK((whole[n] & 0xc0) != 0x80);          /* a character boundary */
		if (max >= 32)                             /* the whole escaped text */
			CHECK_STR(json_string_value(j), whole);
		else
			CHECK(n < strlen(whole));
		json_decref(j);
	}
	struct jsonw w;
	jsonw_init(&w, buf, sizeof buf);
	jsonw_obj_begin(&w);
	jsonw_kstr_max(&w, "n", NULL, 3);
	jsonw_kstr_max(&w, "s", "abcdef", 3);
	jsonw_obj_end(&w);
	CHECK_STR(jsonw_result(&w), "{\"n\":null,\"s\":\"abc\"}");
}

/* A writer that ran out of room goes back to a mark and finishes there. */
static void test_rewind(void)
{
	char buf[32];
	struct jsonw w, mark;
	jsonw_init(&w, buf, sizeof buf);
	jsonw_obj_begin(&w);
	jsonw_kuint(&w, "n", 7);
	mark = w;
	jsonw_key(&w, "a");
	jsonw_arr_begin(&w);
	jsonw_str(&w, "0123456789012345678901234567890123456789");
	CHECK(w.overflow);
	jsonw_rewind(&w, &mark);
	CHECK(!w.overflow);
	CHECK_STR(jsonw_result(&w), "{\"n\":7");
	jsonw_kbool(&w, "truncated", true);
	jsonw_obj_end(&w);
	CHECK(!w.overflow);
	CHECK_STR(jsonw_result(&w), "{\"n\":7,\"truncated\":true}");
}

int main(void)
{
	RUN(test_types_and_nesting);
	RUN(test_every_byte);
	RUN(test_valid_utf8_kept);
	RUN(test_overflow_is_flagged);
	RUN(test_str_max);
	RUN(test_rewind);
	return TEST_EXIT();
}

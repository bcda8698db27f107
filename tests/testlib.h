/* testlib.h — the smallest test harness that does the job.
 *
 * A test file defines functions `static void test_x(void)` and a main() that
 * calls RUN(test_x) for each. CHECK* macros record a failure with file:line and
 * carry on; main returns the number of failed checks (0 = pass), which meson
 * turns into a pass or a fail. TAP is not needed: meson reads the exit code. */
#pragma once

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int testlib_failures;
static const char *testlib_current = "?";

#define CHECK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "%s:%d: %s: CHECK(%s) failed\n", __FILE__, __LINE__, \
			testlib_current, #cond); \
		testlib_failures++; \
	} } while (0)

#define CHECK_INT(a, b) do { \
	long long ta_ = (long long)(a), tb_ = (long long)(b); \
	if (ta_ != tb_) { \
		fprintf(stderr, "%s:%d: %s: %s == %lld, expected %s == %lld\n", __FILE__, \
			__LINE__, testlib_current, #a, ta_, #b, tb_); \
		testlib_failures++; \
	} } while (0)

#define CHECK_STR(a, b) do { \
	const char *ta_ = (a), *tb_ = (b); \
	if ((ta_ == NULL) != (tb_ == NULL) || (ta_ && strcmp(ta_, tb_) != 0)) { \
		fprintf(stderr, "%s:%d: %s: %s == \"%s\", expected \"%s\"\n", __FILE__, \
			__LINE__, testlib_current, #a, ta_ ? ta_ : "(null)", \
			tb_ ? tb_ : "(null)"); \
		testlib_failures++; \
	} } while (0)

#define RUN(fn) do { \
	int before_ = testlib_failures; \
	testlib_current = #fn; \
	fn(); \
	fprintf(stderr, "%s %s\n", testlib_failures == before_ ? "ok  " : "FAIL", #fn); \
	} while (0)

#define TEST_EXIT() (testlib_failures ? EXIT_FAILURE : EXIT_SUCCESS)

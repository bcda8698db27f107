/* test-capture.c — sensor/capture.c: pcap_stats' 32-bit counters widened. */
#include "testlib.h"

#include <limits.h>

#include "capture.h"

/* libpcap's counters are u_int and wrap (every 6 hours at 200k packets a
 * second): what the sensor reports must keep counting through the wrap,
 * never go back (Prometheus would take it for a restart). */
static void test_count_wraps(void)
{
	struct capture_count c = { 0 };
	capture_count_update(&c, 1000);
	CHECK_INT(c.total, 1000);
	capture_count_update(&c, UINT_MAX - 5);
	CHECK(c.total == (uint64_t)UINT_MAX - 5);
	capture_count_update(&c, 10); /* wrapped: 6 to reach 2^32, then 10 */
	CHECK(c.total == (uint64_t)UINT_MAX + 11);
	capture_count_update(&c, 10); /* nothing new */
	CHECK(c.total == (uint64_t)UINT_MAX + 11);
	/* three more wraps, each read in between: 2^34 and more */
	for (int i = 0; i < 3; i++) {
		capture_count_update(&c, UINT_MAX / 2 + 10);
		capture_count_update(&c, 10);
	}
	CHECK(c.total == 4 * ((uint64_t)UINT_MAX + 1) + 10);
}

int main(void)
{
	RUN(test_count_wraps);
	return TEST_EXIT();
}

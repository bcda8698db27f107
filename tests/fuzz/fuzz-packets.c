/* fuzz-packets.c — libFuzzer target: captured frames through decode_packet()
 * and the whole tracker (flow table, reassembly, nDPI, SMTP, message parser,
 * record building and JSON), as relaywatch's on_packet() drives them.
 *
 * Input format (tests/fuzz/README.md; make-seeds.py writes it from pcaps):
 *
 *   byte 0      link type: index into `dlts` below (mod its length)
 *   byte 1      tracker bounds: index into `bounds` (mod its length);
 *               divided by its length, mod 3: --checksums off, auto, on
 *               (off first: the inputs written before checksums were
 *               verified keep reaching the parser)
 *   then frames, each
 *     u8  dt    packet-time step: < 0xf0: dt ms; 0xf0..0xfe: (dt-0xef)*20 s
 *               (crosses the closing, embryonic and idle timeouts);
 *               0xff: the clock steps back 2 s (pcaps do that)
 *     u16 len   big-endian frame length (cut to what is left)
 *     len bytes the frame
 *
 * The tracker is created with tiny bounds so eviction, pool exhaustion and
 * out-of-order buffer limits are hit by small inputs. Every input ends with
 * tracker_finish(), after which nothing may be in use (flows, sessions,
 * nDPI states, reassembly buffers). Creating a tracker costs ~20 ms under
 * ASan (nDPI's initialisation) — it would cap the target at 50 inputs/s — so
 * one tracker per bounds set is kept across inputs and destroyed and made
 * again every RECREATE_EVERY inputs and at exit: LeakSanitizer still sees
 * every allocation that is lost (libFuzzer checks after any input that
 * allocated more than it freed, and at exit). FUZZ_FRESH_TRACKER=1 in the
 * environment makes a new tracker for every input (slow; for a finding that
 * only shows after other inputs, which would point at state kept in nDPI).
 * Each input's packet clock starts an hour after the previous input's last
 * packet, so timeouts behave as in a fresh tracker.
 * Oracles beyond the sanitizers: every record serialises without overflow
 * (record.h promises that for RECORD_JSON_MAX) into JSON that jansson
 * accepts, and the flow table never holds more than max_flows. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "decode.h"
#include "fuzzlib.h"
#include "record.h"
#include "rfc2047.h"
#include "tracker.h"

static const int dlts[] = {
	DECODE_DLT_EN10MB, DECODE_DLT_NULL, DECODE_DLT_RAW, DECODE_DLT_RAW_LT, DECODE_DLT_LOOP,
	DECODE_DLT_LINUX_SLL, DECODE_DLT_IPV4, DECODE_DLT_IPV6, DECODE_DLT_LINUX_SLL2,
};

/* max_flows, max_sessions, max_messages, max_classifying, reasm_buffers,
 * max_workspaces */
static const uint32_t bounds[][6] = {
	{ 4, 2, 1, 2, 1, 1 },
	{ 1, 1, 1, 1, 1, 1 },
	{ 16, 8, 2, 8, 4, 1 },
	{ 8, 1, 1, 8, 2, 2 },
	{ 3, 3, 3, 1, 8, 1 },
};

#define NBOUNDS (sizeof bounds / sizeof bounds[0])
#define NDLTS (sizeof dlts / sizeof dlts[0])

static char json[RECORD_JSON_MAX];
static uint32_t max_flows_now;
static struct tracker *trk_now;

static void json_check(const char *buf, size_t len)
{
	json_error_t err;
	json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &err);
	if (!j) {
		fprintf(stderr, "record JSON rejected by jansson (%s at %d): %.*s\n", err.text,
			err.position, (int)(len > 2000 ? 2000 : len), buf);
		abort();
	}
	json_decref(j);
}

static void on_record(void *ctx, const struct rw_record *r)
{
	(void)ctx;
	bool overflow = false;
	size_t n = record_to_json(r, json, sizeof json, &overflow);
	FUZZ_CHECK(!overflow);
	FUZZ_CHECK(n < sizeof json);
	json_check(json, n);
}

static void on_auth(void *ctx, const struct flow_endpoints *e, const struct smtp_auth_event *a)
{
	(void)ctx;
	(void)e;
	FUZZ_CHECK(a->mech != NULL);
	if (a->user)
		FUZZ_CHECK(strlen(a->user) <= SMTP_USER_MAX);
}

static void on_session(void *ctx, const struct flow_endpoints *e, bool tls, uint64_t ts_us)
{
	(void)ctx;
	(void)e;
	(void)tls;
	(void)ts_us;
}

static void on_flow_end(void *ctx, const struct tracker_flow_summary *s)
{
	(void)ctx;
	char o[46], r[46];
	decode_addr_str(s->ends->v6, s->ends->orig_h, o, sizeof o);
	decode_addr_str(s->ends->v6, s->ends->resp_h, r, sizeof r);
	FUZZ_CHECK(s->proto && strlen(s->proto) < 64);
	FUZZ_CHECK(strlen(s->uid) == 18);
	struct tracker_stats ts;
	tracker_get_stats(trk_now, &ts);
	FUZZ_CHECK(ts.flows->active <= max_flows_now);
}


#define RECREATE_EVERY 2000

static const enum tracker_checksums csum_modes[] = {
	TRACKER_CHECKSUMS_OFF, TRACKER_CHECKSUMS_AUTO, TRACKER_CHECKSUMS_ON,
};
#define NMODES (sizeof csum_modes / sizeof csum_modes[0])

/* one per bounds set and checksum mode: index bounds * NMODES + mode */
static struct tracker *trackers[NBOUNDS * NMODES];
static unsigned uses[NBOUNDS * NMODES];
static uint64_t clock_us = 1700000000ull * 1000000;
static int fresh = -1;

static void destroy_all(void)
{
	for (size_t i = 0; i < NBOUNDS * NMODES; i++) {
		tracker_destroy(trackers[i]);
		trackers[i] = NULL;
	}
	rfc2047_cleanup();
}

static struct tracker *get_tracker(size_t ti)
{
	if (fresh < 0) {
		const char *e = getenv("FUZZ_FRESH_TRACKER");
		fresh = e && *e == '1';
		atexit(destroy_all);
	}
	if (trackers[ti] && (fresh || ++uses[ti] >= RECREATE_EVERY)) {
		tracker_destroy(trackers[ti]);
		trackers[ti] = NULL;
		uses[ti] = 0;
	}
	if (trackers[ti])
		return trackers[ti];
	const uint32_t *b = bounds[ti / NMODES];
	struct tracker_config cfg;
	tracker_config_defaults(&cfg);
	cfg.checksums = csum_modes[ti % NMODES];
	cfg.flows.max_flows = b[0];
	cfg.max_sessions = b[1];
	cfg.max_messages = b[2];
	cfg.max_classifying = b[3];
	cfg.reasm_buffers = b[4];
	cfg.max_workspaces = b[5];
	struct tracker_events ev = { on_record, on_auth, on_session, on_flow_end, NULL };
	char err[256];
	trackers[ti] = tracker_create(&cfg, &ev, NULL, err, sizeof err);
	if (!trackers[ti]) {
		fprintf(stderr, "tracker_create: %s\n", err);
		abort();
	}
	return trackers[ti];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	int dlt = dlts[data[0] % NDLTS];
	size_t bi = data[1] % NBOUNDS;
	const uint32_t *b = bounds[bi];
	size_t mode = (size_t)(data[1] / NBOUNDS) % NMODES;
	data += 2;
	size -= 2;

	size_t ti = bi * NMODES + mode;
	struct tracker *t = get_tracker(ti);
	trk_now = t;
	max_flows_now = b[0];

	clock_us += 3600ull * 1000000;
	uint64_t ts = clock_us;
	while (size >= 3) {
		uint8_t dt = data[0];
		size_t len = (size_t)data[1] << 8 | data[2];
		data += 3;
		size -= 3;
		if (len > size)
			len = size;
		if (dt < 0xf0)
			ts += (uint64_t)dt * 1000;
		else if (dt < 0xff)
			ts += (uint64_t)(dt - 0xef) * 20 * 1000000;
		else
			ts -= 2 * 1000000;

		/* A copy of exactly len bytes, so ASan sees any read past caplen. */
		uint8_t *frame = malloc(len ? len : 1);
		memcpy(frame, data, len);
		struct packet p;
		/* dt's low bit: the frame whole, or cut by a snap length */
		uint32_t wire = (dt & 1) ? (uint32_t)len + 65536 : (uint32_t)len;
		enum decode_result r = decode_packet(dlt, frame, (uint32_t)len, wire, &p);
		FUZZ_CHECK((unsigned)r < DECODE_RESULT_COUNT);
		FUZZ_CHECK(decode_result_name(r) != NULL);
		if (r == DECODE_OK) {
			FUZZ_CHECK(p.payload_len <= p.payload_wire_len);
			FUZZ_CHECK(p.l3 >= frame && p.l3 + p.l3_len <= frame + len);
			FUZZ_CHECK(p.payload_len == 0 ||
			       (p.payload >= frame && p.payload + p.payload_len <= frame + len));
			p.ts_us = ts;
			tracker_packet(t, &p);
		} else {
			tracker_advance(t, ts);
		}
		free(frame);
		data += len;
		size -= len;

		struct tracker_stats st;
		tracker_get_stats(t, &st);
		FUZZ_CHECK(st.flows->active <= b[0]);
		FUZZ_CHECK(st.sessions_active <= b[1]);
		FUZZ_CHECK(st.reasm->pool_in_use <= b[4]);
		FUZZ_CHECK(st.classify->pool_in_use <= b[3]);
		FUZZ_CHECK(st.workspaces_in_use <= b[5]);
		FUZZ_CHECK(st.csum_bad + st.csum_bad_used <= st.csum_verified);
	}
	if (ts > clock_us)
		clock_us = ts;
	tracker_finish(t);
	struct tracker_stats st;
	tracker_get_stats(t, &st);
	FUZZ_CHECK(st.flows->active == 0);
	FUZZ_CHECK(st.sessions_active == 0);
	FUZZ_CHECK(st.reasm->pool_in_use == 0);
	FUZZ_CHECK(st.classify->pool_in_use == 0);
	FUZZ_CHECK(st.workspaces_in_use == 0);
	if (fresh) {
		tracker_destroy(t);
		trackers[ti] = NULL;
	}
	trk_now = NULL;
	return 0;
}

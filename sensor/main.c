/* main.c — relaywatch: wires capture -> decode -> tracker -> outputs.
 *
 * Only wiring and reporting live here (DESIGN.md: "main.c only wires them
 * together"); every stage is a module with its own header. Exit status:
 * 0 done, 1 runtime error, 2 usage or configuration error. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "capture.h"
#include "decode.h"
#include "jsonw.h"
#include "options.h"
#include "output.h"
#include "record.h"
#include "rfc2047.h"
#include "rw-config.h"
#include "tracker.h"

static volatile sig_atomic_t stop_requested;
static struct capture *signal_capture;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
	if (signal_capture)
		capture_break(signal_capture);
}

struct sensor {
	struct rw_options opt;
	struct capture *cap;
	struct tracker *trk;
	struct output *records, *flows;
	int dlt;
	uint64_t decode_counts[DECODE_RESULT_COUNT];
	uint64_t records_written, records_overflow;
	uint64_t first_ts_us, last_ts_us;
	uint64_t next_stats_us, stats_prev_packets, stats_prev_records;
	uint64_t wall_start_us;
	char json[RECORD_JSON_MAX];
};

__attribute__((format(printf, 1, 2)))
static void logmsg(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("relaywatch: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static uint64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* --- tracker events -------------------------------------------------------- */

static void on_record(void *ctx, const struct rw_record *r)
{
	struct sensor *s = ctx;
	if (s->records) {
		bool overflow;
		size_t n = record_to_json(r, s->json, sizeof s->json, &overflow);
		if (overflow)
			s->records_overflow++;
		else if (output_line(s->records, s->json, n) == 0)
			s->records_written++;
	}
}

static void on_flow_end(void *ctx, const struct tracker_flow_summary *fs)
{
	struct sensor *s = ctx;
	if (!s->flows)
		return;
	const struct flow *f = fs->flow;
	char o[46], r[46];
	decode_addr_str(f->v6, f->orig_h, o, sizeof o);
	decode_addr_str(f->v6, f->resp_h, r, sizeof r);
	struct jsonw w;
	jsonw_init(&w, s->json, sizeof s->json);
	jsonw_obj_begin(&w);
	jsonw_kdouble(&w, "ts", (double)f->first_us / 1e6);
	jsonw_kstr(&w, "uid", fs->uid);
	jsonw_kstr(&w, "orig_h", o);
	jsonw_kuint(&w, "orig_p", f->orig_p);
	jsonw_kstr(&w, "resp_h", r);
	jsonw_kuint(&w, "resp_p", f->resp_p);
	if (f->vlan)
		jsonw_kuint(&w, "vlan", f->vlan);
	jsonw_kstr(&w, "proto", fs->proto);
	jsonw_kstr(&w, "verdict", classify_verdict_name(fs->verdict));
	jsonw_kbool(&w, "smtp_parsed", fs->parsed);
	jsonw_kbool(&w, "tls", fs->tls);
	jsonw_kdouble(&w, "duration", (double)(f->last_us - f->first_us) / 1e6);
	jsonw_kuint(&w, "orig_pkts", f->pkts[FLOW_DIR_ORIG]);
	jsonw_kuint(&w, "orig_bytes", f->bytes[FLOW_DIR_ORIG]);
	jsonw_kuint(&w, "resp_pkts", f->pkts[FLOW_DIR_RESP]);
	jsonw_kuint(&w, "resp_bytes", f->bytes[FLOW_DIR_RESP]);
	jsonw_kuint(&w, "transactions", fs->transactions);
	jsonw_kuint(&w, "gaps", fs->gaps);
	jsonw_kuint(&w, "gap_bytes", fs->gap_bytes);
	jsonw_kstr(&w, "end", flow_end_reason_name(fs->why));
	jsonw_obj_end(&w);
	if (!w.overflow)
		output_line(s->flows, s->json, w.len);
}

/* --- stats ------------------------------------------------------------------- */

static void print_stats_line(struct sensor *s, uint64_t now_us, double interval)
{
	struct capture_stats cs;
	struct tracker_stats ts;
	capture_get_stats(s->cap, &cs);
	tracker_get_stats(s->trk, &ts);
	uint64_t pkts = cs.seen, recs = s->records_written;
	double dt = interval > 0 ? interval : 1;
	fprintf(stderr,
		"relaywatch: stats packets=%" PRIu64 " pps=%.0f received=%" PRIu64
		" dropped=%" PRIu64 " if_dropped=%" PRIu64 " flows=%" PRIu64
		" evicted=%" PRIu64 " sessions=%" PRIu64 " transactions=%" PRIu64
		" tps=%.1f gaps=%" PRIu64 "\n",
		pkts, (double)(pkts - s->stats_prev_packets) / dt, cs.received, cs.dropped,
		cs.if_dropped, ts.flows->active, ts.flows->ended_evicted, ts.sessions_active,
		ts.smtp->transactions, (double)(recs - s->stats_prev_records) / dt,
		ts.reasm->gaps);
	s->stats_prev_packets = pkts;
	s->stats_prev_records = recs;
	(void)now_us;
}

/* Stats are paced by the wall clock: they report the sensor, not the traffic. */
static void maybe_stats(struct sensor *s)
{
	if (s->opt.stats_interval <= 0 || s->opt.quiet)
		return;
	uint64_t now = mono_us();
	if (!s->next_stats_us) {
		s->next_stats_us = now + (uint64_t)(s->opt.stats_interval * 1e6);
		return;
	}
	if (now >= s->next_stats_us) {
		print_stats_line(s, now, s->opt.stats_interval);
		s->next_stats_us = now + (uint64_t)(s->opt.stats_interval * 1e6);
	}
}

static void print_summary(struct sensor *s)
{
	struct tracker_stats ts;
	tracker_get_stats(s->trk, &ts);
	struct capture_stats cs;
	capture_get_stats(s->cap, &cs);
	double wall = (double)(mono_us() - s->wall_start_us) / 1e6;
	fprintf(stderr,
		"relaywatch: %" PRIu64 " packets (%" PRIu64 " TCP, %" PRIu64 " fragments skipped, %"
		PRIu64 " truncated, %" PRIu64 " malformed) in %.2f s\n",
		cs.seen, s->decode_counts[DECODE_OK], s->decode_counts[DECODE_FRAGMENT],
		s->decode_counts[DECODE_TRUNCATED], s->decode_counts[DECODE_MALFORMED], wall);
	if (cs.live)
		fprintf(stderr, "relaywatch: pcap received %" PRIu64 ", dropped %" PRIu64
			", interface dropped %" PRIu64 "\n", cs.received, cs.dropped, cs.if_dropped);
	fprintf(stderr,
		"relaywatch: %" PRIu64 " flows (%" PRIu64 " evicted), %" PRIu64 " SMTP sessions, %"
		PRIu64 " encrypted, %" PRIu64 " transactions, %" PRIu64 " records written\n",
		ts.flows->created, ts.flows->ended_evicted, ts.smtp->sessions, ts.encrypted_sessions,
		ts.smtp->transactions, s->records_written);
	if (ts.reasm->gaps || ts.smtp->lines_too_long || ts.smtp->pending_overflow ||
	    ts.smtp->rcpt_over_keep || ts.sessions_exhausted || ts.messages_exhausted ||
	    s->records_overflow)
		fprintf(stderr,
			"relaywatch: degraded: %" PRIu64 " gaps (%" PRIu64 " bytes), %" PRIu64
			" long lines, %" PRIu64 " pipeline overflows, %" PRIu64
			" recipients not kept, %" PRIu64 " sessions and %" PRIu64
			" messages over their pools, %" PRIu64 " records too large\n",
			ts.reasm->gaps, ts.reasm->gap_bytes, ts.smtp->lines_too_long,
			ts.smtp->pending_overflow, ts.smtp->rcpt_over_keep, ts.sessions_exhausted,
			ts.messages_exhausted, s->records_overflow);
}

/* --- packets ------------------------------------------------------------------- */

static void on_packet(void *ctx, const struct capture_packet *cp)
{
	struct sensor *s = ctx;
	struct packet p;
	enum decode_result r = decode_packet(s->dlt, cp->data, cp->caplen, &p);
	s->decode_counts[r]++;
	if (!s->first_ts_us)
		s->first_ts_us = cp->ts_us;
	s->last_ts_us = cp->ts_us;
	if (r == DECODE_OK) {
		p.ts_us = cp->ts_us;
		p.wire_len = cp->len;
		tracker_packet(s->trk, &p);
	} else {
		tracker_advance(s->trk, cp->ts_us);
	}
	maybe_stats(s);
}

static void on_idle(void *ctx, uint64_t now_us)
{
	struct sensor *s = ctx;
	tracker_advance(s->trk, now_us);
	maybe_stats(s);
	output_flush(s->records);
	output_flush(s->flows);
}

/* --- setup ------------------------------------------------------------------------ */

static int open_output(const char *path, struct output **out, const char *what)
{
	if (!path)
		return 0;
	*out = output_open(path);
	if (!*out) {
		logmsg("cannot open %s output %s: %s", what, path, strerror(errno));
		return -1;
	}
	return 0;
}

static struct tracker *make_tracker(struct sensor *s)
{
	struct tracker_config tc;
	tracker_config_defaults(&tc);
	tc.flows.max_flows = (uint32_t)s->opt.max_flows;
	tc.flows.idle_timeout_us = (uint64_t)(s->opt.flow_timeout * 1e6);
	tc.max_sessions = (uint32_t)s->opt.max_sessions;
	tc.max_messages = (uint32_t)s->opt.max_messages;
	struct tracker_events ev = {
		.record = on_record,
		.flow_end = on_flow_end,
	};
	char err[256];
	struct tracker *t = tracker_create(&tc, &ev, s, err, sizeof err);
	if (!t)
		logmsg("%s", err);
	return t;
}

int main(int argc, char **argv)
{
	static struct sensor s; /* large (json buffer): not on the stack */
	char err[1024] = "";
	int status = 1;

	switch (options_parse(argc, argv, &s.opt, err, sizeof err)) {
	case OPTIONS_OK:
		break;
	case OPTIONS_EXIT:
		options_free(&s.opt);
		return 0;
	case OPTIONS_USAGE:
		logmsg("%s", err);
		options_free(&s.opt);
		return 2;
	}

	struct capture_config cc = {
		.file = s.opt.read_file,
		.iface = s.opt.iface,
		.filter = s.opt.filter,
		.buffer_mb = (int)s.opt.buffer_mb,
		.speedup = s.opt.speedup,
	};
	s.cap = capture_open(&cc, err, sizeof err);
	if (!s.cap) {
		logmsg("%s", err);
		goto out;
	}
	s.dlt = capture_linktype(s.cap);
	if (!decode_linktype_supported(s.dlt)) {
		logmsg("link type %s (%d) is not supported", capture_linktype_name(s.cap), s.dlt);
		goto out_close_capture;
	}
	if (s.opt.user) {
		int r = capture_drop_privileges(s.opt.user);
		if (r < 0) {
			logmsg("cannot drop privileges to %s: %s", s.opt.user, strerror(-r));
			goto out_close_capture;
		}
	}
	if (open_output(s.opt.records, &s.records, "records") < 0 ||
	    open_output(s.opt.flows, &s.flows, "flows") < 0)
		goto out_close_outputs;
	s.trk = make_tracker(&s);
	if (!s.trk)
		goto out_close_outputs;

	signal_capture = s.cap;
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (s.opt.verbose)
		logmsg("reading %s (%s), filter: %s", s.opt.read_file ? s.opt.read_file : s.opt.iface,
		       capture_linktype_name(s.cap),
		       *capture_filter(s.cap) ? capture_filter(s.cap) : "(none)");
	s.wall_start_us = mono_us();
	int r = capture_run(s.cap, on_packet, on_idle, &s, &stop_requested, err, sizeof err);
	tracker_finish(s.trk);
	status = 0;
	if (r < 0) {
		/* Frames before the damage were processed; say what broke. */
		logmsg("%s: %s", s.opt.read_file ? s.opt.read_file : s.opt.iface, err);
		status = 1;
	}
	if (!s.opt.quiet)
		print_summary(&s);

	tracker_destroy(s.trk);
out_close_outputs:
	if (output_close(s.records) < 0 || output_close(s.flows) < 0) {
		logmsg("writing output failed: %s", strerror(errno));
		status = 1;
	}
out_close_capture:
	signal_capture = NULL;
	capture_close(s.cap);
out:
	rfc2047_cleanup();
	options_free(&s.opt);
	return status;
}

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
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "capture.h"
#include "counters.h"
#include "decode.h"
#include "detect.h"
#include "jsonw.h"
#include "options.h"
#include "output.h"
#include "record.h"
#include "redis_conn.h"
#include "rfc2047.h"
#include "rw-config.h"
#include "tracker.h"
#include "utf8.h"

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t reopen_requested; /* SIGHUP: log rotation */
static struct capture *signal_capture;

/* SIGHUP reopens the output files (logrotate's postrotate, systemctl reload):
 * done between packets, not in the handler. Installed with SA_RESTART: a
 * file read that the signal interrupts goes on (libpcap would take a short
 * read for a truncated capture). */
static void on_hup(int sig)
{
	(void)sig;
	reopen_requested = 1;
}

/* The first SIGINT/SIGTERM stops the capture and lets pending counters be
 * written (with a deadline); a second one exits at once. */
static void on_signal(int sig)
{
	if (stop_requested) {
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	stop_requested = 1;
	if (signal_capture)
		capture_break(signal_capture);
}

struct sensor {
	struct rw_options opt;
	struct capture *cap;
	struct tracker *trk;
	struct output *records, *flows;
	struct counters *ctr;         /* NULL with --redis none */
	struct detect_config dcfg;
	struct detect *det;
	struct output *alerts;
	uint64_t alerts_raised;
	int dlt;
	uint64_t decode_counts[DECODE_RESULT_COUNT];
	uint64_t records_written, records_overflow;
	int output_err[3];           /* records, flows, alerts: as last told (watch_outputs) */
	bool redis_failing;          /* as last told (watch_redis) */
	const char *checksums;       /* the health hash's `checksums` (make_tracker, on_checksums) */
	char redis_error[256];
	uint64_t first_ts_us, last_ts_us;
	uint64_t next_stats_us, stats_prev_us, stats_prev_packets, stats_prev_txns;
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

static const char *const output_what[3] = { "records", "flows", "alerts" };

/* A file that refuses lines (a full disk) is told when that starts and when
 * it takes them again, not only at exit: meanwhile they wait in memory. Its
 * state changes only when a line is written or flushed, so this is called
 * after those (per line and per idle tick), not per packet. */
static void watch_outputs(struct sensor *s)
{
	struct output *outs[3] = { s->records, s->flows, s->alerts };
	for (size_t i = 0; i < 3; i++) {
		if (!outs[i])
			continue;
		size_t waiting;
		int e = output_error(outs[i], &waiting);
		if (e == s->output_err[i])
			continue;
		if (e == EPIPE)
			logmsg("writing %s to %s: %s: nobody reads it any more, its lines are dropped "
			       "(counted)", output_what[i], output_path(outs[i]), strerror(e));
		else if (e)
			logmsg("writing %s to %s: %s: lines wait in memory (%zu KB, at most %u MB), "
			       "retrying", output_what[i], output_path(outs[i]), strerror(e),
			       waiting / 1024, OUTPUT_PENDING_MAX >> 20);
		else
			logmsg("writing %s to %s again", output_what[i], output_path(outs[i]));
		s->output_err[i] = e;
	}
}

static void on_record(void *ctx, const struct rw_record *r)
{
	struct sensor *s = ctx;
	if (s->ctr)
		counters_record(s->ctr, r);
	detect_record(s->det, r);
	if (s->records) {
		bool overflow;
		size_t n = record_to_json(r, s->json, sizeof s->json, &overflow);
		if (overflow) {
			s->records_overflow++;
		} else {
			output_line(s->records, s->json, n); /* a line lost is counted there */
			s->records_written++;
			watch_outputs(s);
		}
	}
}

static void on_auth(void *ctx, const struct flow_endpoints *e, const struct smtp_auth_event *a)
{
	struct sensor *s = ctx;
	if (!s->ctr || a->outcome == SMTP_AUTH_ABORTED)
		return;
	char client[46], user[ADDRESS_MAX + 1];
	decode_addr_str(e->v6, e->orig_h, client, sizeof client);
	if (a->user)
		record_account(user, sizeof user, a->user);
	const char *u = a->user ? user : NULL; /* the account, as records name it */
	counters_auth(s->ctr, a->ts_us, client, u, a->outcome == SMTP_AUTH_SUCCESS);
	detect_auth(s->det, a->ts_us, client, u, a->outcome == SMTP_AUTH_SUCCESS);
}

static void on_session(void *ctx, const struct flow_endpoints *e, bool tls, uint64_t ts_us)
{
	struct sensor *s = ctx;
	if (!s->ctr)
		return;
	char client[46];
	decode_addr_str(e->v6, e->orig_h, client, sizeof client);
	counters_session(s->ctr, ts_us, client, tls);
	detect_session(s->det, ts_us, client, tls);
}

static void on_flow_end(void *ctx, const struct tracker_flow_summary *fs)
{
	struct sensor *s = ctx;
	const struct flow *f = fs->flow;
	const struct flow_endpoints *e = fs->ends;
	char o[46], r[46];
	decode_addr_str(e->v6, e->orig_h, o, sizeof o);
	decode_addr_str(e->v6, e->resp_h, r, sizeof r);
	if (s->ctr && fs->tls) {
		counters_tls_bytes(s->ctr, f->last_us, o, f->bytes[0] + f->bytes[1]);
		detect_session(s->det, f->last_us, o, true);
	}
	if (!s->flows)
		return;
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
	if (!w.overflow) {
		output_line(s->flows, s->json, w.len);
		watch_outputs(s);
	}
}

/* --- alerts ------------------------------------------------------------------ */

/* A subject on a terminal: no control characters, at most `max` bytes,
 * never cutting a UTF-8 sequence. */
static void printable(const char *in, char *out, size_t outsz, size_t max)
{
	size_t n = in ? utf8_cut(in, strlen(in), max < outsz - 1 ? max : outsz - 1) : 0;
	for (size_t i = 0; i < n; i++)
		out[i] = (unsigned char)in[i] < 0x20 || in[i] == 0x7f ? '?' : in[i];
	out[n] = 0;
}

static void on_alert(void *ctx, const struct counters_alert *a)
{
	struct sensor *s = ctx;
	s->alerts_raised++;
	if (!s->opt.quiet) {
		char subj[128];
		printable(a->sample_subject, subj, sizeof subj, 80);
		fprintf(stderr, "relaywatch: ALERT %-8s %s %s=%s value=%g threshold=%g window=%s "
			"msgs_before_alert=%" PRIu64 "%s%s%s%s%s\n",
			a->severity, a->rule, a->entity_type, a->entity, a->value, a->threshold,
			a->window, a->msgs_before_alert, subj[0] ? " subject=\"" : "", subj,
			subj[0] ? "\"" : "", a->client_ips && *a->client_ips ? " clients=" : "",
			a->client_ips ? a->client_ips : "");
	}
	if (s->alerts) {
		char buf[16384];
		struct jsonw w;
		jsonw_init(&w, buf, sizeof buf);
		jsonw_obj_begin(&w);
		jsonw_kdouble(&w, "ts", a->ts);
		jsonw_kstr(&w, "rule", a->rule);
		jsonw_kstr(&w, "severity", a->severity);
		jsonw_kstr(&w, "entity_type", a->entity_type);
		jsonw_kstr(&w, "entity", a->entity);
		jsonw_kstr(&w, "window", a->window);
		jsonw_kdouble(&w, "value", a->value);
		jsonw_kdouble(&w, "threshold", a->threshold);
		jsonw_key(&w, "baseline");
		if (a->baseline >= 0)
			jsonw_double(&w, a->baseline);
		else
			jsonw_null(&w);
		jsonw_kdouble(&w, "first_seen", a->first_seen);
		jsonw_kuint(&w, "msgs_before_alert", a->msgs_before_alert);
		jsonw_kstr(&w, "sample_subject", a->sample_subject);
		jsonw_kstr(&w, "client_ips", a->client_ips);
		jsonw_kstr(&w, "sensor", s->opt.sensor_name);
		jsonw_key(&w, "extra");
		jsonw_raw(&w, a->extra ? a->extra : "{}");
		jsonw_obj_end(&w);
		if (!w.overflow)
			output_line(s->alerts, buf, w.len);
		output_flush(s->alerts); /* alerts are rare and urgent */
		watch_outputs(s);
	}
	if (s->ctr)
		counters_alert(s->ctr, a);
}

/* --- stats ------------------------------------------------------------------- */

/* The process's resident memory now and at its peak, in bytes (0: not
 * known), for the stats line and the health hash: what an operator holds
 * against the host's budget (tests/bench/README.md says what makes it up).
 * Read at most once a second of the wall clock: flushes follow packet time,
 * which a file replays far faster than that. */
static void process_memory(uint64_t *rss, uint64_t *peak)
{
	static uint64_t last_us, last_rss, last_peak;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
	uint64_t now_us = (uint64_t)now.tv_sec * 1000000u + (uint64_t)now.tv_nsec / 1000u;
	if (last_us && now_us - last_us < 1000000u) {
		*rss = last_rss;
		*peak = last_peak;
		return;
	}
	last_us = now_us;
	*rss = *peak = 0;
	FILE *f = fopen("/proc/self/statm", "re");
	if (f) {
		unsigned long size, resident;
		long page = sysconf(_SC_PAGESIZE);
		if (fscanf(f, "%lu %lu", &size, &resident) == 2 && page > 0)
			*rss = (uint64_t)resident * (uint64_t)page;
		fclose(f);
	}
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) == 0 && ru.ru_maxrss > 0)
		*peak = (uint64_t)ru.ru_maxrss * 1024; /* Linux counts it in KiB */
	/* The kernel updates its high-water mark lazily: never report a peak
	 * below a value seen. */
	if (*peak < *rss)
		*peak = *rss;
	if (*peak < last_peak)
		*peak = last_peak;
	last_rss = *rss;
	last_peak = *peak;
}

/* Rates are over the time since the previous line (or since the first
 * packet), as measured: a line can come later than --stats-interval (a quiet
 * file read from a pipe, a paced replay, an idle tick of 200 ms). */
static void print_stats_line(struct sensor *s, uint64_t now_us)
{
	struct capture_stats cs;
	struct tracker_stats ts;
	capture_get_stats(s->cap, &cs);
	tracker_get_stats(s->trk, &ts);
	/* transactions parsed, whether or not --records writes them */
	uint64_t pkts = cs.seen, txns = ts.smtp->transactions;
	double dt = now_us > s->stats_prev_us ? (double)(now_us - s->stats_prev_us) / 1e6 : 1e-6;
	uint64_t rss, rss_peak;
	process_memory(&rss, &rss_peak);
	fprintf(stderr,
		"relaywatch: stats packets=%" PRIu64 " pps=%.0f received=%" PRIu64
		" dropped=%" PRIu64 " if_dropped=%" PRIu64 " flows=%" PRIu64
		" evicted=%" PRIu64 " sessions=%" PRIu64 " transactions=%" PRIu64
		" tps=%.1f gaps=%" PRIu64 " bad_checksums=%" PRIu64 " rss_mb=%.1f\n",
		pkts, (double)(pkts - s->stats_prev_packets) / dt, cs.received, cs.dropped,
		cs.if_dropped, ts.flows->active, ts.flows->ended_evicted, ts.sessions_active,
		ts.smtp->transactions, (double)(txns - s->stats_prev_txns) / dt,
		ts.reasm->gaps, ts.csum_bad, (double)rss / (1024 * 1024));
	s->stats_prev_packets = pkts;
	s->stats_prev_txns = txns;
	s->stats_prev_us = now_us;
}

/* Stats are paced by the wall clock: they report the sensor, not the traffic. */
static void maybe_stats(struct sensor *s)
{
	if (s->opt.stats_interval <= 0) /* -q: 0 unless given (options.c) */
		return;
	uint64_t now = mono_us();
	if (!s->next_stats_us) {
		s->next_stats_us = now + (uint64_t)(s->opt.stats_interval * 1e6);
		s->stats_prev_us = now;
		return;
	}
	if (now >= s->next_stats_us) {
		print_stats_line(s, now);
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
		PRIu64 " encrypted, %" PRIu64 " transactions, %" PRIu64 " alerts\n",
		ts.flows->created, ts.flows->ended_evicted, ts.smtp->sessions, ts.encrypted_sessions,
		ts.smtp->transactions, s->alerts_raised);
	if (s->records) {
		/* flushed first, so that a full disk is told here and not after
		 * a count that says all went well */
		int r = output_flush(s->records);
		uint64_t lost = output_lost(s->records);
		if (r < 0 || lost)
			fprintf(stderr, "relaywatch: %" PRIu64 " records for %s, but writing failed"
				" (%s): the file is incomplete, %" PRIu64 " lines not written\n",
				s->records_written, output_path(s->records),
				strerror(r < 0 ? -r : output_first_error(s->records)), lost);
		else
			fprintf(stderr, "relaywatch: %" PRIu64 " records written to %s\n",
				s->records_written, output_path(s->records));
	}
	if (ts.sessions_peak)
		fprintf(stderr,
			"relaywatch: memory: at most %" PRIu64 " SMTP sessions (%zu B each) with %.1f MB"
			" of strings and queues, %" PRIu64 " + %" PRIu64 " line buffers (%d B, %d B)"
			" and %" PRIu64 " message parsers at once\n",
			ts.sessions_peak, smtp_session_sizeof(), (double)ts.smtp->store_peak / 1e6,
			ts.smtp->line_bufs_small_peak, ts.smtp->line_bufs_big_peak, SMTP_CARRY_SMALL,
			SMTP_LINE_MAX + 1, ts.messages_peak);
	const struct reasm_stats *rs = ts.reasm;
	if (rs->overlap_conflicts || rs->ooo_overflows || rs->out_of_window || rs->pool_exhausted)
		fprintf(stderr,
			"relaywatch: tcp: %" PRIu64 " overlaps with different bytes (the first copy kept), %"
			PRIu64 " out-of-order buffers full, %" PRIu64 " segments out of the window, %"
			PRIu64 " times no out-of-order buffer was free\n",
			rs->overlap_conflicts, rs->ooo_overflows, rs->out_of_window, rs->pool_exhausted);
	if (ts.msgs_headers_oversized || ts.fields_truncated || ts.mime_over)
		fprintf(stderr,
			"relaywatch: bounded: %" PRIu64 " header blocks over their bound (still read), %"
			PRIu64 " header values cut, %" PRIu64 " MIME structures over their bound, %"
			PRIu64 " undecodable bytes shown as U+FFFD\n",
			ts.msgs_headers_oversized, ts.fields_truncated, ts.mime_over,
			ts.bytes_replaced);
	if (ts.reasm->gaps || ts.smtp->lines_too_long || ts.smtp->pending_overflow ||
	    ts.smtp->rcpt_over_keep || ts.sessions_exhausted || ts.messages_exhausted ||
	    s->records_overflow || ts.smtp->lines_no_buffer || ts.smtp->records_early ||
	    ts.csum_bad)
		fprintf(stderr,
			"relaywatch: degraded: %" PRIu64 " gaps (%" PRIu64 " bytes), %" PRIu64
			" long lines, %" PRIu64 " pipeline overflows, %" PRIu64
			" records written before their replies, %" PRIu64
			" recipients not kept, %" PRIu64 " sessions and %" PRIu64
			" messages over their pools, %" PRIu64 " records too large, %" PRIu64
			" lines cut for want of a line buffer, %" PRIu64
			" segments with a bad TCP checksum left out\n",
			ts.reasm->gaps, ts.reasm->gap_bytes, ts.smtp->lines_too_long,
			ts.smtp->pending_overflow, ts.smtp->records_early, ts.smtp->rcpt_over_keep,
			ts.sessions_exhausted, ts.messages_exhausted, s->records_overflow,
			ts.smtp->lines_no_buffer, ts.csum_bad);
	if (ts.csum_bad_used)
		fprintf(stderr,
			"relaywatch: checksums: %" PRIu64 " of %" PRIu64 " TCP segments verified had bad"
			" checksums and were used, as where the NIC fills them in (checksum"
			" offload); --checksums on leaves them out\n",
			ts.csum_bad_used, ts.csum_verified);
	const struct classify_stats *cl = ts.classify;
	uint64_t classified = cl->flows_smtp + cl->flows_tls + cl->flows_tunnel + cl->flows_other +
			      cl->flows_unknown;
	if (classified)
		fprintf(stderr,
			"relaywatch: flows classified: %" PRIu64 " SMTP (%" PRIu64
			" settled by the SMTP parser), %" PRIu64 " TLS, %" PRIu64 " HTTP CONNECT, %"
			PRIu64 " other, %" PRIu64 " unknown; at most %" PRIu64
			" under nDPI at once\n",
			cl->flows_smtp, cl->settled_by_parser, cl->flows_tls,
			cl->flows_tunnel, cl->flows_other, cl->flows_unknown, cl->pool_peak);
	if (cl->pool_exhausted)
		fprintf(stderr,
			"relaywatch: degraded: %" PRIu64 " flows classified by their ports alone: "
			"%" PRIu64 " were under nDPI already (--max-classifying)\n",
			cl->pool_exhausted, cl->pool_peak);
	if (ts.parts_skipped)
		fprintf(stderr,
			"relaywatch: %" PRIu64 " MIME part header blocks not parsed (attachment "
			"names lost): no header workspace was free, %" PRIu64 " in use at most\n",
			ts.parts_skipped, ts.workspaces_peak);
}

static void set_health(struct sensor *s)
{
	struct capture_stats cs;
	struct tracker_stats ts;
	capture_get_stats(s->cap, &cs);
	tracker_get_stats(s->trk, &ts);
	struct counters_health h = {
		.packets_received = cs.live ? cs.received : cs.seen,
		.packets_dropped = cs.dropped,
		.packets_if_dropped = cs.if_dropped,
		.flows = ts.flows->active,
		.flows_evicted = ts.flows->ended_evicted,
		.records = ts.smtp->transactions,
		.sessions = ts.sessions_active,
		.sessions_over = ts.sessions_exhausted,
		.bad_checksums = ts.csum_bad,
		.checksums = s->checksums,
	};
	process_memory(&h.rss_bytes, &h.rss_peak_bytes);
	counters_set_health(s->ctr, &h);
}

/* Redis trouble is told when it starts, when its reason changes and when it
 * ends, not only at exit: meanwhile counters and alerts wait in memory
 * (bounded by --max-pending). Looked at once per flush interval. */
static void watch_redis(struct sensor *s)
{
	struct counters_stats st;
	counters_get_stats(s->ctr, &st);
	if (st.failing && (!s->redis_failing || strcmp(st.last_error, s->redis_error))) {
		logmsg("redis: %s: counters and alerts wait in memory (%" PRIu64 " events, %"
		       PRIu64 " alerts so far), retrying", st.last_error[0] ? st.last_error :
		       "unreachable", st.events_pending, st.alerts_pending);
		snprintf(s->redis_error, sizeof s->redis_error, "%s", st.last_error);
	} else if (!st.failing && s->redis_failing) {
		logmsg("redis: writing again");
		s->redis_error[0] = 0;
	}
	s->redis_failing = st.failing;
}

/* The counters' clock is packet time; health numbers ride along each flush. */
static void tick_counters(struct sensor *s, uint64_t now_us)
{
	if (!s->ctr)
		return;
	/* pcap_stats() is a system call: health is taken when a batch is
	 * about to be cut (and at exit), not per packet */
	if (counters_cut_due(s->ctr, now_us)) {
		set_health(s);
		watch_redis(s);
	}
	counters_tick(s->ctr, now_us);
}

/* --- packets ------------------------------------------------------------------- */

/* After SIGHUP: every output file opened again (see on_hup). */
static void maybe_reopen(struct sensor *s)
{
	if (!reopen_requested)
		return;
	reopen_requested = 0;
	struct output *outs[3] = { s->records, s->flows, s->alerts };
	for (size_t i = 0; i < 3; i++) {
		int r = output_reopen(outs[i]);
		if (r < 0)
			logmsg("cannot reopen the %s output %s: %s (still writing the file it had)",
			       output_what[i], output_path(outs[i]), strerror(-r));
	}
	watch_outputs(s);
	if (s->opt.verbose)
		logmsg("SIGHUP: outputs reopened");
}

static void on_packet(void *ctx, const struct capture_packet *cp)
{
	struct sensor *s = ctx;
	struct packet p;
	enum decode_result r = decode_packet(s->dlt, cp->data, cp->caplen, cp->len, &p);
	s->decode_counts[r]++;
	if (!s->first_ts_us)
		s->first_ts_us = cp->ts_us;
	s->last_ts_us = cp->ts_us;
	if (r == DECODE_OK) {
		p.ts_us = cp->ts_us;
		tracker_packet(s->trk, &p);
	} else {
		tracker_advance(s->trk, cp->ts_us);
	}
	tick_counters(s, cp->ts_us);
	maybe_stats(s);
	maybe_reopen(s);
}

static void on_idle(void *ctx, uint64_t now_us)
{
	struct sensor *s = ctx;
	tracker_advance(s->trk, now_us);
	tick_counters(s, now_us);
	maybe_stats(s);
	output_flush(s->records);
	output_flush(s->flows);
	watch_outputs(s);
	maybe_reopen(s);
}

/* --- setup ------------------------------------------------------------------------ */

/* Close an output; a write error is told with the output's name and path.
 * Returns 0, or -1 when lines were lost. */
static int close_output(struct output *o, const char *what)
{
	if (!o)
		return 0;
	char path[256];
	snprintf(path, sizeof path, "%s", output_path(o));
	uint64_t lost;
	int r = output_close(o, &lost);
	if (r == 0)
		return 0;
	if (lost)
		logmsg("writing %s to %s failed: %s (%" PRIu64 " lines not written)", what, path,
		       strerror(-r), lost);
	else
		logmsg("writing %s to %s failed: %s", what, path, strerror(-r));
	return -1;
}

static int open_output(const char *path, bool append, struct output **out, const char *what)
{
	if (!path)
		return 0;
	*out = output_open(path, append);
	if (!*out) {
		logmsg("cannot open %s output %s: %s", what, path, strerror(errno));
		return -1;
	}
	return 0;
}

static void on_checksums(void *ctx, bool verify, uint64_t verified, uint64_t bad)
{
	struct sensor *s = ctx;
	s->checksums = verify ? "auto-on" : "auto-off";
	if (!verify)
		logmsg("checksums: %" PRIu64 " of the first %" PRIu64 " TCP segments verified have bad "
		       "checksums: the capture is made where the NIC fills them in (checksum "
		       "offload, as on the sending host); no longer verified (--checksums on "
		       "verifies them anyway)", bad, verified);
	else if (s->opt.verbose)
		logmsg("checksums: %" PRIu64 " of the first %" PRIu64 " TCP segments verified have bad "
		       "checksums: segments with bad ones are left out", bad, verified);
}

static struct tracker *make_tracker(struct sensor *s)
{
	struct tracker_config tc;
	tracker_config_defaults(&tc);
	tc.flows.max_flows = (uint32_t)s->opt.max_flows;
	tc.flows.idle_timeout_us = (uint64_t)(s->opt.flow_timeout * 1e6);
	tc.max_sessions = (uint32_t)s->opt.max_sessions;
	tc.max_classifying = (uint32_t)s->opt.max_classifying;
	tc.max_messages = (uint32_t)s->opt.max_messages;
	tc.max_workspaces = (uint32_t)s->opt.max_workspaces;
	tc.local_domains = &s->dcfg.local_domains; /* loaded before the tracker is made */
	switch ((enum rw_checksums)s->opt.checksums) {
	case RW_CHECKSUMS_AUTO:
		tc.checksums = TRACKER_CHECKSUMS_AUTO;
		s->checksums = "auto"; /* until on_checksums */
		break;
	case RW_CHECKSUMS_ON:
		tc.checksums = TRACKER_CHECKSUMS_ON;
		s->checksums = "on";
		break;
	case RW_CHECKSUMS_OFF:
		tc.checksums = TRACKER_CHECKSUMS_OFF;
		s->checksums = "off";
		break;
	}
	struct tracker_events ev = {
		.record = on_record,
		.auth = on_auth,
		.session = on_session,
		.flow_end = on_flow_end,
		.checksums = on_checksums,
	};
	char err[256];
	struct tracker *t = tracker_create(&tc, &ev, s, err, sizeof err);
	if (!t)
		logmsg("%s", err);
	return t;
}

#define COUNTERS_EXIT_DEADLINE_S 10.0 /* how long exit waits for Redis */

_Static_assert(OPTIONS_PREFIX_MAX <= COUNTERS_PREFIX_MAX,
	       "options.c accepts a prefix counters.c would refuse");

/* Configuration, the password and the pseudonymisation key: read before
 * privileges are dropped (the files may be root-only); nothing runs yet. */
static int make_counters(struct sensor *s)
{
	if (!strcmp(s->opt.redis_url, "none"))
		return 0;
	struct counters_config cc = {
		.url = s->opt.redis_url,
		.password_file = s->opt.redis_password_file,
		.prefix = s->opt.redis_prefix,
		.sensor_name = s->opt.sensor_name,
		.flush_interval_s = s->opt.flush_interval,
		.max_pending = s->opt.max_pending,
		.stream_maxlen = s->opt.stream_maxlen,
		.cooldown_s = s->opt.alert_cooldown,
		.pseudo_key_file = s->opt.pseudonymize ? s->opt.pseudonymize_key_file : NULL,
		/* a file read faster than it was recorded */
		.sync_hours = s->opt.read_file && s->opt.speedup == 0,
	};
	char err[512];
	s->ctr = counters_create(&cc, err, sizeof err);
	if (!s->ctr) {
		int e = errno;
		logmsg("redis: %s", err);
		return e == EINVAL ? -2 : -1; /* -2: a configuration error */
	}
	return 0;
}

/* The embedded redis-server and the writer: started once privileges are
 * dropped, so that they run as --user. */
static int start_counters(struct sensor *s)
{
	if (!s->ctr)
		return 0;
	char err[512];
	if (counters_start(s->ctr, err, sizeof err) < 0) {
		logmsg("redis: %s", err);
		return -1;
	}
	if (!strcmp(s->opt.redis_url, "embedded"))
		logmsg("embedded Redis at %s (stops when relaywatch exits)", counters_where(s->ctr));
	else if (s->opt.verbose)
		logmsg("counting in Redis at %s", counters_where(s->ctr));
	return 0;
}

/* Send what is pending; say so if Redis did not take it all. */
/* Returns how many events and alerts Redis never got. */
static uint64_t close_counters(struct sensor *s)
{
	if (!s->ctr)
		return 0;
	if (s->cap && s->trk)
		set_health(s); /* for the last batch */
	struct counters_stats st;
	counters_get_stats(s->ctr, &st);
	/* Redis that answered during the run gets time to come back; one that
	 * was never reached gets one more try, not a long wait. */
	double deadline = st.reconnects ? COUNTERS_EXIT_DEADLINE_S : 1.0;
	uint64_t lost = counters_destroy(s->ctr, deadline, &st);
	s->ctr = NULL;
	if (lost)
		logmsg("redis: %" PRIu64 " events and alerts could not be written before exit (%s)",
		       lost, st.last_error[0] ? st.last_error : "Redis unreachable");
	if (st.events_dropped)
		logmsg("redis: %" PRIu64 " events were dropped while Redis was away (--max-pending)",
		       st.events_dropped);
	if (st.alerts_dropped)
		logmsg("redis: %" PRIu64 " alerts were not kept while Redis was away (%u at most "
		       "wait; --alerts-json still has them)", st.alerts_dropped,
		       COUNTERS_ALERTS_PENDING_MAX);
	if (!s->opt.quiet && s->trk) {
		struct tracker_stats ts;
		tracker_get_stats(s->trk, &ts);
		uint64_t msgs = ts.smtp->transactions;
		logmsg("redis: %" PRIu64 " commands in %" PRIu64 " round trips for %" PRIu64
		       " transactions (%.3f commands per transaction), %" PRIu64 " batches, %"
		       PRIu64 " reconnects, %" PRIu64 " alerts sent (%" PRIu64 " duplicates)",
		       st.commands_sent, st.round_trips, msgs,
		       msgs ? (double)st.commands_sent / (double)msgs : 0.0, st.batches_sent,
		       st.reconnects ? st.reconnects - 1 : 0, st.alerts_sent, st.alerts_duplicate);
	}
	return lost;
}

/* ps shows every process's command line to every user: the password of a
 * --redis URL (redis://user:PASS@host, redis://PASS@host, the same for
 * unix://) is overwritten in argv once options_parse() holds its own copy.
 * A lone name before '@' is hidden too: it is the password unless a
 * password file is given. */
static void hide_url_password(char *url)
{
	char *p;
	if (!strncmp(url, "redis://", 8))
		p = url + 8;
	else if (!strncmp(url, "unix://", 7))
		p = url + 7;
	else
		return;
	char *end = p + strcspn(p, "/"), *at = NULL;
	for (char *c = p; c < end; c++)
		if (*c == '@')
			at = c; /* the last '@' of the authority ends the userinfo */
	if (!at)
		return;
	char *colon = memchr(p, ':', (size_t)(at - p));
	for (char *c = colon ? colon + 1 : p; c < at; c++)
		*c = 'x';
}

static void hide_passwords(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++) {
		if (!strcmp(argv[i], "--redis") && i + 1 < argc)
			hide_url_password(argv[++i]);
		else if (!strncmp(argv[i], "--redis=", 8))
			hide_url_password(argv[i] + 8);
	}
}

int main(int argc, char **argv)
{
	static struct sensor s; /* large (json buffer): not on the stack */
	char err[1024] = "";
	int status = 1;

	/* SIGHUP (logrotate's postrotate, systemctl reload) may come while we
	 * start: its default action would end the sensor, and systemd counts
	 * that as a clean exit, not restarted. Only noted until the loop runs. */
	struct sigaction hup = { .sa_handler = on_hup, .sa_flags = SA_RESTART };
	sigemptyset(&hup.sa_mask);
	sigaction(SIGHUP, &hup, NULL);
	/* a file over RLIMIT_FSIZE (systemd's LimitFSIZE=) is a write error
	 * (EFBIG), told and retried like a full disk, not the end of the sensor */
	signal(SIGXFSZ, SIG_IGN);

	if (redis_password_option_check(argc, argv, err, sizeof err) < 0) {
		logmsg("%s", err);
		return 2;
	}
	enum options_result parsed = options_parse(argc, argv, &s.opt, err, sizeof err);
	hide_passwords(argc, argv);
	switch (parsed) {
	case OPTIONS_OK:
		break;
	case OPTIONS_EXIT:
		options_free(&s.opt);
		return 0;
	case OPTIONS_PRINT_CONFIG:
		options_print_ini();
		detect_print_rules();
		options_free(&s.opt);
		if (fflush(stdout) != 0 || ferror(stdout)) {
			logmsg("stdout: %s", strerror(errno ? errno : EIO));
			return 1;
		}
		return 0;
	case OPTIONS_USAGE:
		logmsg("%s", err);
		options_free(&s.opt);
		return 2;
	}
	if (detect_config_load(&s.dcfg, &s.opt, err, sizeof err) < 0) {
		logmsg("%s", err);
		options_free(&s.opt);
		return 2;
	}
	/* A malformed Redis URL is a usage error, told before the capture opens
	 * (not a runtime one after it). The parsed target may hold a password:
	 * wiped at once; counters_create() parses it again. */
	if (strcmp(s.opt.redis_url, "none") && strcmp(s.opt.redis_url, "embedded")) {
		struct redis_target t;
		int r = redis_target_parse(s.opt.redis_url, &t, err, sizeof err);
		redis_target_wipe(&t);
		if (r < 0) {
			char where[320];
			logmsg("%s: %s", options_where(&s.opt, "redis", where, sizeof where), err);
			options_free(&s.opt);
			return 2;
		}
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
		char where[320];
		if (errno == EINVAL) {
			status = 2; /* the filter: systemd does not restart on 2 */
			const char *f = s.opt.filter ? s.opt.filter : "";
			bool quoted = (*f == '"' || *f == '\'') && strlen(f) > 1 &&
				      f[strlen(f) - 1] == *f;
			options_where(&s.opt, "filter", where, sizeof where);
			logmsg("%s: %s%s", where, err, quoted && where[0] != '-' ?
			       " (the file takes a value without quotes)" : "");
		} else {
			logmsg("%s", err);
		}
		goto out;
	}
	s.dlt = capture_linktype(s.cap);
	if (!decode_linktype_supported(s.dlt)) {
		logmsg("link type %s (%d) is not supported", capture_linktype_name(s.cap), s.dlt);
		goto out_close_capture;
	}
	/* the secrets are read as the user who started us: they may be
	 * readable by root only */
	int mc = make_counters(&s);
	if (mc < 0) {
		if (mc == -2)
			status = 2;
		goto out_close_capture;
	}
	if (s.opt.user) {
		int r = capture_drop_privileges(s.opt.user);
		if (r == -ENOENT) {
			char where[320];
			logmsg("%s: no user named %s", options_where(&s.opt, "user", where,
								    sizeof where), s.opt.user);
			status = 2;
			goto out_close_counters;
		}
		if (r < 0) {
			logmsg("cannot drop privileges to %s: %s", s.opt.user, strerror(-r));
			goto out_close_counters;
		}
	}
	int caps = capture_drop_capabilities();
	if (caps < 0)
		logmsg("warning: cannot give up capabilities: %s", strerror(-caps));
	/* live, the outputs are logs: a restart adds to them (logrotate rotates
	 * them); a capture file's are made afresh */
	bool append = !s.opt.read_file;
	if (open_output(s.opt.records, append, &s.records, "records") < 0 ||
	    open_output(s.opt.flows, append, &s.flows, "flows") < 0 ||
	    open_output(s.opt.alerts_json, append, &s.alerts, "alerts") < 0)
		goto out_close_counters;
	if (output_same_file(s.records, s.flows) || output_same_file(s.records, s.alerts) ||
	    output_same_file(s.flows, s.alerts)) {
		logmsg("--records, --flows and --alerts-json must name different files ('-' "
		       "for stdout may be shared)");
		status = 2;
		goto out_close_counters;
	}
	if (start_counters(&s) < 0)
		goto out_close_counters;
	s.det = detect_create(&s.dcfg, s.ctr, on_alert, &s);
	if (!s.det) {
		logmsg("out of memory");
		goto out_close_counters;
	}
	if (!s.opt.quiet && s.dcfg.enabled[RULE_OPEN_RELAY] && !s.dcfg.local_domains.n)
		logmsg("open_relay is off until [network] local_domains names our own domains");
	if (!s.opt.quiet && !s.ctr)
		logmsg("--redis none: nothing is counted; only open_relay and display_spoof run");
	s.trk = make_tracker(&s);
	if (!s.trk)
		goto out_close_counters;

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

out_close_counters:
	if (close_counters(&s) && status == 0)
		status = 1; /* Redis never got all of it: told above */
	tracker_destroy(s.trk);
	detect_destroy(s.det);
	/* every output is closed, whichever failed (or was never opened) */
	if (close_output(s.records, "records") | close_output(s.flows, "flows") |
	    close_output(s.alerts, "alerts"))
		status = 1;
out_close_capture:
	signal_capture = NULL;
	capture_close(s.cap);
out:
	rfc2047_cleanup();
	options_free(&s.opt);
	return status;
}

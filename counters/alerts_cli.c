/* alerts_cli.c — relaywatch-alerts: follow the alert stream `P alerts`
 * (SCHEMA.md "The alert stream") and print each alert as one readable line
 * or as one JSON object.
 *
 * Plain mode reads with XREAD after a position: the end of the stream when
 * the program starts (new alerts only), or the stream ID of --since.
 *
 * Group mode (--group, --consumer) reads with XREADGROUP and delivers at
 * least once: an entry is XACKed only after its line was written and flushed
 * to stdout, and at start the consumer first reads its own pending entries
 * (XREADGROUP ... 0: read before a crash, never acknowledged), then new ones
 * (">"). The group is created when missing (XGROUP CREATE ... MKSTREAM).
 *
 * Waiting is XREAD BLOCK of at most BLOCK_MS in a loop, so SIGINT and SIGTERM
 * end the program promptly with status 0; the signal handler also shuts the
 * socket of a blocked read down so it returns at once. When Redis cannot be
 * reached, following retries with a doubling backoff and a one-line message
 * per attempt. When it answers with a state that passes
 * (redis_error_transient(): loading its dataset after a restart, a blocked
 * read cut short by a failover or CLIENT UNBLOCK, a long script, a replica
 * refusing the group's writes), following disconnects and retries with the
 * same backoff, and says so once until it reads again. A group that went
 * away while we read is created again after the last entry we handled, or
 * at the start of the new stream when its stream was deleted. Across a
 * retry no alert is lost (plain mode reads on after the last entry printed;
 * a group replays its pending entries) and none is printed twice (an entry
 * printed whose XACK failed is acknowledged, not printed, when it comes
 * back). --once gives up with status 1 on all of these; a refused login
 * (AUTH, SELECT) ends following too.
 *
 * Exit status: 0 done or interrupted, 1 runtime error (Redis unreachable or
 * not ready with --once, Redis refused the login, the database or a command,
 * output failed), 2 usage error. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "cli_common.h"
#include "redis_conn.h"
#include "rw-config.h"

#define PROG "relaywatch-alerts"

#define BATCH "100"              /* entries per XREAD */
#define BLOCK_MS "1000"          /* longest wait inside Redis before we look at signals */
#define TIMEOUT_MS 5000          /* connect, read, write: longer than BLOCK_MS */
#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 30000
#define STREAM_ID_MAX 48         /* "18446744073709551615-18446744073709551615" */
#define FIELDS_MAX 64            /* fields of one entry looked at; the rest are ignored */
#define KEY_MAX 256              /* bytes of a field name written as JSON */
#define VALUE_MAX 65536          /* bytes of a field value written as JSON */
#define LINE_BYTES 8192          /* one readable line, bounded by the column cuts below */
#define ENTITY_COLS 100
#define SUBJECT_COLS 120
#define CLIENTS_COLS 120
#define SHORT_COLS 32            /* rule, type, window, numbers */
#define ERR_MAX 512

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t blocked_fd = -1;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
	/* A read blocked in XREAD BLOCK returns now instead of after BLOCK_MS:
	 * shutdown() is async-signal-safe. */
	if (blocked_fd >= 0)
		shutdown(blocked_fd, SHUT_RDWR);
}

struct app {
	struct cli_redis ro;
	bool json, once, color;
	bool since_given;
	double since;
	const char *group, *consumer;
	char consumer_buf[256];

	struct redis_target target;
	char where[512];
	char stream[CLI_PREFIX_MAX + 8];
	redisContext *c;
	char err[ERR_MAX];

	/* plain mode */
	bool start_resolved;
	char last_id[STREAM_ID_MAX];      /* read after this */
	char end_id[STREAM_ID_MAX];       /* --once: stop after this */
	/* group mode */
	bool replaying;                   /* reading our own pending entries */
	bool since_noted;
	bool stream_gone;                 /* deleted under XREADGROUP: recreate from 0 */
	char pending_id[STREAM_ID_MAX];
	char group_read[STREAM_ID_MAX];   /* the newest entry handled in the group */
	char unacked_id[STREAM_ID_MAX];   /* printed, its XACK not (yet) done */

	uint64_t emitted;
	uint64_t stop_before_ack;         /* test hook, see main() */
};

/* Step results besides 0. */
enum {
	STEP_DONE = 1,                    /* --once: nothing more to read */
};

/* --- Redis --------------------------------------------------------------------- */

/* Run a command. Returns 0 with *out set, or with the reason in a->err:
 * -EIO when the connection failed (reconnect), -ENOENT for NOGROUP or a
 * stream deleted under XREADGROUP (the group went away: create it again),
 * -EAGAIN for a state that passes (redis_error_transient(): retry later),
 * -EPROTO when Redis refused. */
static int cmd(struct app *a, redisReply **out, int argc, const char **argv, bool blocking)
{
	if (blocking)
		blocked_fd = a->c->fd;
	redisReply *r = redisCommandArgv(a->c, argc, argv, NULL);
	blocked_fd = -1;
	*out = NULL;
	if (!r) {
		snprintf(a->err, sizeof a->err, "%s: %s", a->where,
			 a->c->errstr[0] ? a->c->errstr : "connection lost");
		return -EIO;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		int e = -EPROTO;
		if (!strncmp(r->str, "NOGROUP", 7)) {
			e = -ENOENT;
		} else if (!strcmp(r->str, "UNBLOCKED the stream key no longer exists")) {
			/* Redis 7: the stream of a blocked XREADGROUP was deleted */
			a->stream_gone = true;
			e = -ENOENT;
		} else if (redis_error_transient(r->str, r->len)) {
			e = -EAGAIN;
		}
		char msg[300];
		cli_text(r->str, r->len, false, 200, msg, sizeof msg);
		snprintf(a->err, sizeof a->err, "%s %s: %s", argv[0], a->where, msg);
		freeReplyObject(r);
		return e;
	}
	*out = r;
	return 0;
}

static bool parse_id(const char *s, uint64_t *ms, uint64_t *seq)
{
	char *end;
	errno = 0;
	*ms = strtoull(s, &end, 10);
	if (end == s || errno)
		return false;
	*seq = 0;
	if (*end == '-') {
		const char *p = end + 1;
		*seq = strtoull(p, &end, 10);
		if (end == p || errno)
			return false;
	}
	return !*end;
}

/* a > b, for stream IDs. */
static bool id_after(const char *a, const char *b)
{
	uint64_t am, as, bm, bs;
	if (!parse_id(a, &am, &as) || !parse_id(b, &bm, &bs))
		return false;
	return am > bm || (am == bm && as > bs);
}

/* The stream ID just before the first entry added at or after t (seconds). */
static void id_before_time(double t, char *out, size_t outsz)
{
	uint64_t ms = t > 0 ? (uint64_t)floor(t * 1000.0) : 0;
	if (ms == 0)
		snprintf(out, outsz, "0-0");
	else
		snprintf(out, outsz, "%" PRIu64 "-18446744073709551615", ms - 1);
}

/* The last ID the stream gave (XINFO STREAM's last-generated-id), or "0-0"
 * when the stream does not exist yet. XINFO rather than XREVRANGE: it is in
 * the alerts consumer's ACL (SCHEMA.md). */
static int stream_last_id(struct app *a, char *out, size_t outsz)
{
	const char *argv[] = { "XINFO", "STREAM", a->stream };
	redisReply *r;
	int e = cmd(a, &r, 3, argv, false);
	if (e == -EPROTO && strstr(a->err, "no such key")) {
		snprintf(out, outsz, "0-0");
		return 0;
	}
	if (e < 0)
		return e;
	int res = -EPROTO;
	snprintf(a->err, sizeof a->err, "XINFO STREAM %s: unexpected reply", a->stream);
	if (r->type == REDIS_REPLY_ARRAY) {
		for (size_t i = 0; i + 1 < r->elements; i += 2) {
			redisReply *k = r->element[i], *v = r->element[i + 1];
			if (k->type == REDIS_REPLY_STRING && !strcmp(k->str, "last-generated-id") &&
			    v->type == REDIS_REPLY_STRING && v->len < outsz) {
				snprintf(out, outsz, "%s", v->str);
				res = 0;
				break;
			}
		}
	}
	freeReplyObject(r);
	return res;
}

static void disconnect(struct app *a)
{
	redisFree(a->c);
	a->c = NULL;
}

/* Connect, log in, and get ready to read: in plain mode decide where to start
 * (once per run: after a reconnect we go on after the last entry read); in
 * group mode make sure the group exists and replay our pending entries. */
static int connect_prepare(struct app *a)
{
	/* -EACCES, a refused login, ends the program: waiting will not help */
	int e = redis_conn_open(&a->target, TIMEOUT_MS, PROG, &a->c, a->err, sizeof a->err);
	if (e < 0)
		return e;
	if (!a->group) {
		if (!a->start_resolved) {
			if (a->since_given)
				id_before_time(a->since, a->last_id, sizeof a->last_id);
			else
				e = stream_last_id(a, a->last_id, sizeof a->last_id);
			if (!e && a->once)
				e = stream_last_id(a, a->end_id, sizeof a->end_id);
			if (!e)
				a->start_resolved = true;
		}
	} else {
		char start[STREAM_ID_MAX];
		if (a->stream_gone)
			snprintf(start, sizeof start, "0");   /* all of it came after the deletion */
		else if (a->group_read[0])
			/* the group went away under us: on after what we handled */
			snprintf(start, sizeof start, "%s", a->group_read);
		else if (a->since_given)
			id_before_time(a->since, start, sizeof start);
		else
			snprintf(start, sizeof start, "$");
		const char *argv[] = { "XGROUP", "CREATE", a->stream, a->group, start, "MKSTREAM" };
		redisReply *r;
		e = cmd(a, &r, 6, argv, false);
		if (e == -EPROTO && strstr(a->err, "BUSYGROUP")) {
			e = 0;             /* it exists: it knows where we were */
			if (a->since_given && !a->since_noted)
				fprintf(stderr, PROG ": group %s exists and goes on where it was; "
					"--since applies only when it is created\n", a->group);
			a->since_noted = true;
		} else if (!e) {
			freeReplyObject(r);
		}
		if (!e) {
			a->stream_gone = false;
			a->since_noted = true;   /* ours from now on: a reconnect is not news */
		}
		a->replaying = true;
		snprintf(a->pending_id, sizeof a->pending_id, "0-0");
	}
	if (e < 0)
		disconnect(a);
	return e;
}

/* --- output -------------------------------------------------------------------- */

struct line {
	char buf[LINE_BYTES];
	size_t len;
};

static void line_add(struct line *l, const char *s)
{
	size_t n = strlen(s), room = sizeof l->buf - 1 - l->len; /* len < sizeof buf */
	if (n > room)
		n = room;
	memcpy(l->buf + l->len, s, n);
	l->len += n;
	l->buf[l->len] = 0;
}

/* A field of the entry: the first one with that name. */
static bool field(const redisReply *f, const char *name, const char **v, size_t *n)
{
	size_t nf = f->elements / 2;
	if (nf > FIELDS_MAX)
		nf = FIELDS_MAX;
	for (size_t i = 0; i < nf; i++) {
		const redisReply *k = f->element[2 * i], *x = f->element[2 * i + 1];
		if (k->type != REDIS_REPLY_STRING || x->type != REDIS_REPLY_STRING)
			continue;
		if (k->len == strlen(name) && !memcmp(k->str, name, k->len)) {
			*v = x->str;
			*n = x->len;
			return true;
		}
	}
	*v = "";
	*n = 0;
	return false;
}

/* Append a field's value made safe for the terminal. */
static void add_text(struct line *l, const redisReply *f, const char *name, bool quote,
		     size_t cols, bool decode)
{
	const char *v;
	size_t n;
	char raw[CLI_ID_MAX * 2 + 1], out[1024];
	field(f, name, &v, &n);
	if (decode) {
		/* entity IDs are percent-escaped in the stream as in the keys */
		n = cli_id_decode(v, n, raw, sizeof raw);
		v = raw;
	}
	cli_text(v, n, quote, cols, out, sizeof out);
	line_add(l, out);
}

static const char *severity_color(const char *sev, size_t n)
{
	static const struct { const char *name, *sgr; } map[] = {
		{ "low", "\033[36m" },
		{ "medium", "\033[33m" },
		{ "high", "\033[1;31m" },
		{ "critical", "\033[1;37;41m" },
	};
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
		if (n == strlen(map[i].name) && !memcmp(sev, map[i].name, n))
			return map[i].sgr;
	return NULL;
}

/* TIME SEVERITY RULE TYPE=ENTITY VALUE/THRESHOLD WINDOW [baseline=B]
 * msgs_before=N [subject="..."] [clients=...] [escalated] */
static void format_line(const struct app *a, const char *id, const redisReply *f,
			struct line *l)
{
	const char *v;
	size_t n;
	char tmp[256];
	double ts = NAN;
	l->len = 0;
	l->buf[0] = 0;

	if (field(f, "ts", &v, &n) && n && n < 64) {
		char num[64];
		memcpy(num, v, n);
		num[n] = 0;
		char *end;
		ts = strtod(num, &end);
		if (*end || !isfinite(ts) || ts < 0)
			ts = NAN;
	}
	if (isnan(ts)) {
		uint64_t ms, seq;
		ts = parse_id(id, &ms, &seq) ? (double)ms / 1000.0 : 0;
	}
	cli_iso_local(ts, tmp, sizeof tmp);
	line_add(l, tmp);
	line_add(l, " ");

	field(f, "severity", &v, &n);
	char sev[SHORT_COLS * 4 + 8];
	size_t cols = cli_text(v, n, false, 8, sev, sizeof sev);
	for (char *p = sev; *p; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
	const char *sgr = a->color ? severity_color(v, n) : NULL;
	if (sgr)
		line_add(l, sgr);
	line_add(l, sev);
	if (sgr)
		line_add(l, "\033[0m");
	for (; cols < 8; cols++)
		line_add(l, " ");
	line_add(l, " ");

	add_text(l, f, "rule", false, SHORT_COLS, false);
	line_add(l, " ");
	add_text(l, f, "entity_type", false, SHORT_COLS, false);
	line_add(l, "=");
	add_text(l, f, "entity", false, ENTITY_COLS, true);
	line_add(l, " ");
	add_text(l, f, "value", false, SHORT_COLS, false);
	line_add(l, "/");
	add_text(l, f, "threshold", false, SHORT_COLS, false);
	line_add(l, " ");
	add_text(l, f, "window", false, SHORT_COLS, false);
	if (field(f, "baseline", &v, &n) && n) {
		line_add(l, " baseline=");
		add_text(l, f, "baseline", false, SHORT_COLS, false);
	}
	line_add(l, " msgs_before=");
	add_text(l, f, "msgs_before_alert", false, SHORT_COLS, false);
	if (field(f, "sample_subject", &v, &n) && n) {
		line_add(l, " subject=\"");
		add_text(l, f, "sample_subject", true, SUBJECT_COLS, false);
		line_add(l, "\"");
	}
	if (field(f, "client_ips", &v, &n) && n) {
		line_add(l, " clients=");
		add_text(l, f, "client_ips", false, CLIENTS_COLS, false);
	}
	if (field(f, "escalated", &v, &n) && n == 1 && v[0] == '1')
		line_add(l, " escalated");
	line_add(l, "\n");
}

static bool is_numeric_field(const char *k, size_t n)
{
	static const char *const names[] = { "ts", "value", "threshold", "baseline",
					     "first_seen", "msgs_before_alert", "escalated" };
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (n == strlen(names[i]) && !memcmp(k, names[i], n))
			return true;
	return false;
}

/* A field value as JSON: numbers as numbers (empty = null), `extra` as the
 * object it holds, everything else as a string (valid UTF-8, cut at
 * VALUE_MAX). Returns NULL only when out of memory. */
static json_t *json_value(const char *k, size_t kn, const char *v, size_t n, json_t **raw)
{
	*raw = NULL;
	if (is_numeric_field(k, kn)) {
		if (!n)
			return json_null();
		if (n < 64) {
			char num[64], *end;
			memcpy(num, v, n);
			num[n] = 0;
			errno = 0;
			long long i = strtoll(num, &end, 10);
			if (!*end && !errno)
				return json_integer(i);
			double d = strtod(num, &end);
			if (!*end && isfinite(d))
				return json_real(d);
		}
	}
	if (n > VALUE_MAX)
		n = VALUE_MAX;
	char *buf = malloc(n * 3 + 1);
	if (!buf)
		return NULL;
	size_t len = cli_utf8_clean(v, n, buf, n * 3 + 1);
	json_t *s = json_stringn(buf, len);
	free(buf);
	if (kn == 5 && !memcmp(k, "extra", 5)) {
		json_t *obj = json_loadb(v, n, 0, NULL);
		if (json_is_object(obj)) {
			json_decref(s);
			return obj;
		}
		/* not an object: keep what it said next to an empty one */
		json_decref(obj);
		*raw = s;
		return json_object();
	}
	return s;
}

static char *format_json(const char *id, const redisReply *f)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	json_object_set_new(o, "id", json_string(id));
	size_t nf = f->elements / 2;
	if (nf > FIELDS_MAX)
		nf = FIELDS_MAX;
	for (size_t i = 0; i < nf; i++) {
		const redisReply *k = f->element[2 * i], *x = f->element[2 * i + 1];
		if (k->type != REDIS_REPLY_STRING || x->type != REDIS_REPLY_STRING)
			continue;
		char key[KEY_MAX * 3 + 1];
		size_t kl = cli_utf8_clean(k->str, k->len < KEY_MAX ? k->len : KEY_MAX, key,
					   sizeof key);
		if (json_object_getn(o, key, kl))
			continue;          /* "id", or a field given twice: the first wins */
		json_t *raw;
		json_t *val = json_value(k->str, k->len, x->str, x->len, &raw);
		if (!val) {
			json_decref(o);
			return NULL;
		}
		json_object_setn_new(o, key, kl, val);
		if (raw)
			json_object_set_new(o, "extra_raw", raw);
	}
	/* 16 significant digits: a packet time keeps its microseconds, and
	 * 0.1 stays 0.1 */
	char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(16));
	json_decref(o);
	return s;
}

/* Write one entry and flush. Returns 0 or -errno of the failed write. */
static int emit(struct app *a, const char *id, const redisReply *f)
{
	int res = 0;
	errno = 0;
	if (a->json) {
		char *s = format_json(id, f);
		if (!s)
			return -ENOMEM;
		if (fputs(s, stdout) == EOF || fputc('\n', stdout) == EOF)
			res = errno ? -errno : -EIO;
		free(s);
	} else {
		static struct line l;
		format_line(a, id, f, &l);
		if (fwrite(l.buf, 1, l.len, stdout) != l.len)
			res = errno ? -errno : -EIO;
	}
	if (!res && fflush(stdout) == EOF)
		res = errno ? -errno : -EIO;
	if (res)
		clearerr(stdout);
	return res;
}

/* --- reading ------------------------------------------------------------------- */

static int ack(struct app *a, const char *id)
{
	const char *argv[] = { "XACK", a->stream, a->group, id };
	redisReply *r;
	int e = cmd(a, &r, 4, argv, false);
	if (!e)
		freeReplyObject(r);
	return e;
}

/* Print (and in group mode acknowledge) the entries of one XREAD reply.
 * *got is set to the number of entries seen. */
static int handle_reply(struct app *a, const redisReply *r, size_t *got, bool *past_end)
{
	*got = 0;
	if (r->type == REDIS_REPLY_NIL)
		return 0;
	if (r->type != REDIS_REPLY_ARRAY)
		goto bad;
	for (size_t s = 0; s < r->elements; s++) {
		const redisReply *st = r->element[s];
		if (st->type != REDIS_REPLY_ARRAY || st->elements != 2 ||
		    st->element[1]->type != REDIS_REPLY_ARRAY)
			goto bad;
		const redisReply *entries = st->element[1];
		for (size_t i = 0; i < entries->elements && !stop_requested; i++) {
			const redisReply *e = entries->element[i];
			if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
			    e->element[0]->type != REDIS_REPLY_STRING ||
			    e->element[0]->len >= STREAM_ID_MAX)
				goto bad;
			const char *id = e->element[0]->str;
			const redisReply *f = e->element[1];
			(*got)++;
			if (!a->group && a->once && id_after(id, a->end_id)) {
				*past_end = true;
				return 0;
			}
			bool printed = false;
			if (a->group && a->unacked_id[0] && !strcmp(id, a->unacked_id)) {
				/* printed before a retry, its XACK never answered:
				 * acknowledge it, do not print it again */
			} else if (f->type == REDIS_REPLY_ARRAY) {
				int w = emit(a, id, f);
				if (w < 0)
					return w;
				a->emitted++;
				printed = true;
				if (a->group)
					snprintf(a->unacked_id, sizeof a->unacked_id, "%s", id);
			} else if (!a->group || f->type != REDIS_REPLY_NIL) {
				goto bad;
			}
			/* A NIL entry is pending but was deleted from the stream
			 * (XDEL, MAXLEN): nothing to print, acknowledge it. */
			if (a->group) {
				if (printed && a->emitted == a->stop_before_ack)
					raise(SIGSTOP);
				int k = ack(a, id);
				if (k < 0)
					return k;
				a->unacked_id[0] = 0;
				if (!a->group_read[0] || id_after(id, a->group_read))
					snprintf(a->group_read, sizeof a->group_read, "%s", id);
				if (a->replaying)
					snprintf(a->pending_id, sizeof a->pending_id, "%s", id);
			} else {
				snprintf(a->last_id, sizeof a->last_id, "%s", id);
			}
		}
	}
	return 0;
bad:
	snprintf(a->err, sizeof a->err, "%s: unexpected reply to XREAD", a->stream);
	return -EPROTO;
}

/* Read and print one batch. Returns 0, STEP_DONE, or a negative errno. */
static int step(struct app *a)
{
	const char *argv[16];
	int argc = 0;
	bool blocking = false;
	if (a->group) {
		argv[argc++] = "XREADGROUP";
		argv[argc++] = "GROUP";
		argv[argc++] = a->group;
		argv[argc++] = a->consumer;
	} else {
		argv[argc++] = "XREAD";
	}
	argv[argc++] = "COUNT";
	argv[argc++] = BATCH;
	if (!a->once && !(a->group && a->replaying)) {
		argv[argc++] = "BLOCK";
		argv[argc++] = BLOCK_MS;
		blocking = true;
	}
	argv[argc++] = "STREAMS";
	argv[argc++] = a->stream;
	argv[argc++] = a->group ? (a->replaying ? a->pending_id : ">") : a->last_id;
	redisReply *r;
	int e = cmd(a, &r, argc, argv, blocking);
	if (e < 0)
		return e;
	size_t got = 0;
	bool past_end = false;
	e = handle_reply(a, r, &got, &past_end);
	freeReplyObject(r);
	if (e < 0)
		return e;
	if (a->group && a->replaying && got == 0) {
		a->replaying = false;      /* our pending entries are done: now new ones */
		a->unacked_id[0] = 0;      /* its XACK went through after all */
	}
	else if (a->once && !a->replaying && (got == 0 || past_end))
		return STEP_DONE;
	return 0;
}

/* --- main ---------------------------------------------------------------------- */

static void usage(void)
{
	printf(
"Usage: " PROG " [OPTIONS]\n"
"Print the alerts relaywatch adds to the Redis stream PREFIX+alerts (rw:alerts), one\n"
"per line, and wait for more.\n"
"\n"
"  2026-11-23T10:00:05+09:00 HIGH     account_burst account=alice@pref.example.jp 120/100\n"
"  10m msgs_before=37 subject=\"HELLO!DEAR!GOOD NEWS TO YOU,\" clients=203.0.113.7\n"
"\n"
"The time is the packet time of the message that crossed the threshold, in local time.\n"
"VALUE/THRESHOLD are the measured value and the threshold it crossed, over WINDOW (10m,\n"
"1h, 24h, or message); msgs_before is how many messages of the entity came before the\n"
"alert in that window. Severity is coloured on a terminal.\n"
"\n"
"Output:\n"
"  --json             one JSON object per line: \"id\" (the stream ID) and every field of\n"
"                     the entry; numbers as numbers (an empty baseline is null), \"extra\"\n"
"                     as the object it holds\n"
"Where to start (default: alerts added from now on):\n"
"  --since WHEN       10m, 1h, 2d ago; 2026-11-23T10:00 (local time, or add Z or +09:00);\n"
"                     unix seconds; 0 or all for the whole stream. WHEN is compared with\n"
"                     the stream IDs, i.e. when Redis received the alert\n"
"  --once             print what there is and exit instead of waiting\n"
"Delivery to another program, at least once:\n"
"  --group G          read as consumer group G of the stream (created if missing, starting\n"
"                     at --since or at new alerts). An alert is acknowledged (XACK) only\n"
"                     once its line is written and flushed to stdout\n"
"  --consumer C       the consumer's name in the group [the host name]. Keep it stable: at\n"
"                     start, what C read but never acknowledged is printed again first\n"
"Redis:\n"
CLI_HELP_REDIS
"\n"
"When Redis cannot be reached or is not ready (loading its data after a restart, a\n"
"failover, a long script, a replica refusing a group's writes), " PROG " retries\n"
"with a growing delay (up to %d s), without losing or repeating an alert; with\n"
"--once it exits with status 1. A refused login (wrong password, unknown user,\n"
"database out of range) or command exits with status 1. Exit status: 0 done or\n"
"interrupted (Ctrl-C), 1 runtime error, 2 usage error.\n"
"\n"
"Examples:\n"
"  " PROG "                             # watch new alerts\n"
"  " PROG " --since 1h --once           # what fired in the last hour\n"
"  " PROG " --since all --once --json | jq -c 'select(.severity == \"critical\")'\n"
"  " PROG " --json --group tickets --consumer t1 | ./open-ticket\n"
"  " PROG " --redis redis://alerts:@redis.example:6379 --redis-password-file alerts.pass\n"
"      # ACL user 'alerts', password from the file (a lone 'name@' in a URL is a\n"
"      # password, as for redis-cli)\n",
	BACKOFF_MAX_MS / 1000);
}

int main(int argc, char **argv)
{
	static struct app app;
	struct app *a = &app;
	cli_redis_init(&a->ro);
	enum { OPT_JSON = CLI_OPT_FIRST_FREE, OPT_SINCE, OPT_ONCE, OPT_GROUP, OPT_CONSUMER };
	static const struct option lopts[] = {
		CLI_LONG_OPTIONS,
		{ "json", no_argument, NULL, OPT_JSON },
		{ "since", required_argument, NULL, OPT_SINCE },
		{ "once", no_argument, NULL, OPT_ONCE },
		{ "group", required_argument, NULL, OPT_GROUP },
		{ "consumer", required_argument, NULL, OPT_CONSUMER },
		{ 0 },
	};
	const char *since = NULL;
	int c;
	opterr = 0;
	if (cli_check_password_option(PROG, argc, argv))
		return CLI_EXIT_USAGE;
	while ((c = getopt_long(argc, argv, ":hV", lopts, NULL)) != -1) {
		if (cli_redis_option(&a->ro, c, optarg))
			continue;
		switch (c) {
		case 'h':
			usage();
			return CLI_EXIT_OK;
		case 'V':
			cli_print_version(PROG);
			return CLI_EXIT_OK;
		case OPT_JSON:
			a->json = true;
			break;
		case OPT_SINCE:
			since = optarg;
			break;
		case OPT_ONCE:
			a->once = true;
			break;
		case OPT_GROUP:
			a->group = optarg;
			break;
		case OPT_CONSUMER:
			a->consumer = optarg;
			break;
		case ':':
			return cli_usage_error(PROG, "%s needs a value", argv[optind - 1]);
		default:
			return cli_usage_error(PROG, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage_error(PROG, "unexpected argument '%s'", argv[optind]);
	if (since) {
		if (cli_parse_time(since, (double)time(NULL), &a->since) < 0)
			return cli_usage_error(PROG, "--since '%s': expected 10m, 1h, 2d, "
					       "2026-11-23T10:00, unix seconds, or all", since);
		a->since_given = true;
	}
	if (a->consumer && !a->group)
		return cli_usage_error(PROG, "--consumer needs --group");
	if (a->group) {
		if (!*a->group || strlen(a->group) > 200)
			return cli_usage_error(PROG, "--group: 1 to 200 bytes");
		if (!a->consumer) {
			if (gethostname(a->consumer_buf, sizeof a->consumer_buf - 1) < 0 ||
			    !a->consumer_buf[0])
				snprintf(a->consumer_buf, sizeof a->consumer_buf, "relaywatch-alerts");
			a->consumer = a->consumer_buf;
		}
		if (!*a->consumer || strlen(a->consumer) > 200)
			return cli_usage_error(PROG, "--consumer: 1 to 200 bytes");
	}
	if (cli_redis_target(&a->ro, &a->target, a->err, sizeof a->err) < 0)
		return cli_usage_error(PROG, "%s", a->err);
	redis_target_describe(&a->target, a->where, sizeof a->where);
	snprintf(a->stream, sizeof a->stream, "%salerts", a->ro.prefix);
	a->color = !a->json && cli_color_wanted(STDOUT_FILENO, a->ro.no_color);

	/* Test hook (tests/integration/test_alerts_cli.py): stop with SIGSTOP
	 * after the Nth entry was written and flushed, before its XACK, so the
	 * test can SIGKILL the consumer at exactly that point. */
	const char *hook = getenv("RELAYWATCH_ALERTS_STOP_BEFORE_ACK");
	if (hook && *hook)
		a->stop_before_ack = strtoull(hook, NULL, 10);

	struct sigaction sa = { 0 };
	sa.sa_handler = on_signal;   /* no SA_RESTART: a blocked read must return */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	int status = CLI_EXIT_OK;
	long backoff = BACKOFF_MIN_MS;
	bool failed_before = false;
	char told[ERR_MAX] = "";           /* the passing state last said, said once */
	while (!stop_requested) {
		int e = a->c ? 0 : connect_prepare(a);
		bool connecting = e < 0;   /* the failure came from connecting */
		if (!e)
			e = step(a);
		if (e == STEP_DONE)
			break;
		if (e == 0) {
			/* backoff starts over once a read worked, not at connect:
			 * a Redis loading its dataset accepts connections */
			if (failed_before)
				fprintf(stderr, PROG ": connected to %s\n", a->where);
			failed_before = false;
			told[0] = 0;
			backoff = BACKOFF_MIN_MS;
			continue;
		}
		if (stop_requested)
			break;
		if (e == -EPIPE)
			break;             /* the reader went away (| head): a normal end */
		if (a->c && (e == -EIO || e == -ENOENT || e == -EAGAIN))
			disconnect(a);
		if (e == -ENOENT && !connecting)
			continue;          /* the group went away: create it again at once */
		if ((e == -EIO || e == -ENOENT || e == -EAGAIN) && !a->once) {
			if (e == -EIO && !connecting && !failed_before) {
				/* lost connection: reconnect at once (a group re-reads
				 * its pending entries, plain mode goes on after the last
				 * entry printed) */
				fprintf(stderr, PROG ": %s; reconnecting\n", a->err);
				failed_before = true;
				continue;
			}
			failed_before = true;
			if (e != -EAGAIN) {
				fprintf(stderr, PROG ": %s; retrying in %.1f s\n", a->err,
					(double)backoff / 1000.0);
				told[0] = 0;
			} else if (strcmp(a->err, told)) {
				fprintf(stderr, PROG ": %s; retrying with a growing delay until it "
					"passes\n", a->err);
				snprintf(told, sizeof told, "%s", a->err);
			}
			cli_sleep_ms(backoff, &stop_requested);
			backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
			continue;
		}
		if (connecting || e == -EPROTO || e == -EIO || e == -ENOENT || e == -EAGAIN)
			fprintf(stderr, PROG ": %s\n", a->err);
		else
			fprintf(stderr, PROG ": writing alerts: %s\n", strerror(-e));
		status = CLI_EXIT_RUNTIME;
		break;
	}
	if (a->c)
		disconnect(a);
	redis_target_wipe(&a->target);
	return status;
}

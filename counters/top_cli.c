/* top_cli.c — relaywatch-top: who sends most now.
 *
 * Ranks accounts, subject fingerprints and client addresses by messages in
 * the last 10 minutes, summing the per-minute top sets `P{top}:KIND:MINUTE`
 * client-side (ZUNIONSTORE would write), then reads each ranked entity's
 * 10 min / 1 h / 24 h windows from its bucket hashes (msgs, rcpts) and its
 * distinct recipient domains (PFCOUNT of the `rdom` HyperLogLogs of each
 * window), as SCHEMA.md defines them. Fingerprints come with their sample
 * subject.
 *
 * "Now", where the windows end, is packet time like everything in Redis:
 * --at if given, else the newest minute that has top sets (a replayed
 * capture writes old minutes), else the wall clock. The newest minute is
 * P{top}:newest, kept by counters/lua/top.lua (SCHEMA.md): one GET at each
 * refresh, whatever the size of the keyspace and wherever the minutes are.
 * Without that key (data of an older sensor, which did not write it) the
 * minutes around the wall clock are probed with EXISTS, one pipelined round
 * trip: an older sensor writing live is still found. There is no SCAN: it
 * walked the whole keyspace at every refresh (a hundred round trips per
 * 100,000 keys); an older sensor's replayed capture far from the wall clock
 * is no longer found by itself (--at reaches it).
 *
 * A window is whole buckets (SCHEMA.md "Windows"). Without --at it ends
 * with the bucket that holds "now", as the sensor's rules count: the
 * current minute, five minutes and hour are in. With --at WHEN it ends with
 * the last bucket that ends at or before WHEN, so nothing after WHEN is
 * counted: for WHEN = 10:07:30 the 10 minutes 09:57-10:07, the hour
 * 09:05-10:05 and the 24 hours to 10:00.
 *
 * Only reads: GET, EXISTS, ZREVRANGE, HMGET, PFCOUNT, GETRANGE. Everything
 * taken from Redis is bounded here: members per top key (MEMBERS_MAX), entity
 * ID length (CLI_ID_MAX, longer members are skipped and counted), sample
 * bytes (GETRANGE), rows (-n).
 *
 * Exit status: 0 done, 1 runtime error (Redis unreachable with --once or
 * --json; Redis refused the login or the database, also in the live view),
 * 2 usage error. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "cli_common.h"
#include "redis_conn.h"
#include "rw-config.h"

#define PROG "relaywatch-top"

#define TOP_N_DEFAULT 10
#define TOP_N_MAX 1000
#define MINUTES 10                /* top keys summed: the 10-minute window */
#define MEMBERS_MAX 1000          /* read per top key; the sensor keeps 1000 (SCHEMA.md) */
#define SAMPLE_MAX 512            /* bytes of E:sample read (GETRANGE) */
#define PROBE_AHEAD 2             /* minutes past the wall clock probed (clock skew) */
#define NEWEST_DIGITS_MAX 10      /* P{top}:newest: a minute in decimal... */
#define NEWEST_MINUTE_LIMIT (1LL << 31)   /* ...below 2^31, as exporter.lua accepts */
#define TIMEOUT_MS 3000
#define KEY_MAX (CLI_PREFIX_MAX + CLI_ID_MAX + 128)
#define ERR_MAX 512
#define ENTITY_COLS_PIPE 40       /* entity column when not on a terminal */
#define ENTITY_COLS_MIN 20
#define ENTITY_COLS_MAX 60
#define SUBJECT_COLS_PIPE 60
#define NUM_COLS 6                /* one number: at most 5 characters and a space */
#define GROUPS_COLS (3 * (1 + 3 * NUM_COLS))

enum kind { K_ACCT, K_FP, K_IP, K_COUNT };
static const char *const kind_tag[K_COUNT] = { "acct", "fp", "ip" };
static const char *const kind_title[K_COUNT] = { "ACCOUNTS", "FINGERPRINTS", "CLIENTS" };
static const char *const kind_json[K_COUNT] = { "accounts", "fingerprints", "clients" };

/* SCHEMA.md "Windows": the buckets that cover each window. */
enum win { W_10M, W_1H, W_24H, W_COUNT };
static const struct {
	const char *res;
	long len, count;
	const char *name;
} windows[W_COUNT] = {
	{ "m", 60, 10, "10m" },
	{ "f", 300, 12, "1h" },
	{ "h", 3600, 24, "24h" },
};

static volatile sig_atomic_t stop_requested, winch;

static void on_signal(int sig)
{
	if (sig == SIGWINCH)
		winch = 1;
	else
		stop_requested = 1;
}

struct row {
	char id[CLI_ID_MAX + 1];      /* as in the keys: percent-escaped */
	size_t idlen;
	double top;                   /* sum of the top scores over 10 minutes */
	long long msgs[W_COUNT], rcpts[W_COUNT], rdoms[W_COUNT];
	bool has_sample;
	char sample[SAMPLE_MAX + 1];
	size_t sample_len;
};

struct snapshot {
	double at;
	const char *at_source;        /* "at", "data", "clock" */
	struct row *rows[K_COUNT];
	size_t nrows[K_COUNT];
	uint64_t skipped;             /* top members too long or with a bad score */
	char warn[ERR_MAX];           /* first command Redis refused, if any */
};

struct app {
	struct cli_redis ro;
	long n;
	bool once, json, color, at_given;
	double at, interval;
	struct redis_target target;
	char where[512];
	redisContext *c;
	char err[ERR_MAX];
	int width, height;            /* terminal, in refresh mode */
};

/* --- Redis --------------------------------------------------------------------- */

static void disconnect(struct app *a)
{
	redisFree(a->c);
	a->c = NULL;
}

/* Read one reply of a pipeline. -EIO when the connection failed. A refused
 * command is not fatal (the reading goes on as if the key were missing) but
 * the first one is kept in s->warn for the user. */
static int get_reply(struct app *a, struct snapshot *s, redisReply **out)
{
	void *r = NULL;
	*out = NULL;
	if (redisGetReply(a->c, &r) != REDIS_OK || !r) {
		snprintf(a->err, sizeof a->err, "%s: %s", a->where,
			 a->c->errstr[0] ? a->c->errstr : "connection lost");
		return -EIO;
	}
	redisReply *rr = r;
	if (rr->type == REDIS_REPLY_ERROR) {
		if (s && !s->warn[0])
			cli_text(rr->str, rr->len, false, 200, s->warn, sizeof s->warn);
		freeReplyObject(rr);
		return 0;
	}
	*out = rr;
	return 0;
}

/* Append "PREFIX{TAG:ID}SUFFIX" (ID binary, as Redis gave it). */
static size_t entity_key(char *out, const char *prefix, const char *tag, const char *id,
			 size_t idlen, const char *suffix)
{
	int h = snprintf(out, KEY_MAX, "%s{%s:", prefix, tag);
	size_t o = (size_t)h;
	memcpy(out + o, id, idlen);
	o += idlen;
	o += (size_t)snprintf(out + o, KEY_MAX - o, "}%s", suffix);
	return o;
}

static long long parse_count(const redisReply *r)
{
	if (!r)
		return 0;
	if (r->type == REDIS_REPLY_INTEGER)
		return r->integer > 0 ? r->integer : 0;
	if (r->type != REDIS_REPLY_STRING || !r->len || r->len > 24)
		return 0;
	char buf[32], *end;
	memcpy(buf, r->str, r->len);
	buf[r->len] = 0;
	errno = 0;
	long long v = strtoll(buf, &end, 10);
	if (*end || errno || v < 0)
		return 0;
	return v;
}

static long long sat_add(long long a, long long b)
{
	return a > LLONG_MAX - b ? LLONG_MAX : a + b;
}

/* The minute held in P{top}:newest (decimal, as top.lua writes it), or -1
 * when the reply is not one: absent, refused, another type, or a value
 * top.lua would not write (sign, spaces, decimals, past 2^31 as the
 * exporter's check). */
static long long newest_minute(const redisReply *r)
{
	if (!r || r->type != REDIS_REPLY_STRING || r->len < 1 || r->len > NEWEST_DIGITS_MAX)
		return -1;
	long long m = 0;
	for (size_t i = 0; i < r->len; i++) {
		if (r->str[i] < '0' || r->str[i] > '9')
			return -1;
		m = m * 10 + (r->str[i] - '0');
	}
	return m < NEWEST_MINUTE_LIMIT ? m : -1;
}

/* Where the windows end: see the top of the file. One GET of P{top}:newest;
 * only without a usable one, one pipelined round trip of EXISTS over the
 * minutes around the wall clock (an older sensor, live). Never a SCAN: the
 * cost does not grow with the keyspace. */
static int resolve_now(struct app *a, struct snapshot *s)
{
	if (a->at_given) {
		s->at = a->at;
		s->at_source = "at";
		return 0;
	}
	time_t wall = time(NULL);
	char keys[K_COUNT][KEY_MAX];
	snprintf(keys[0], sizeof keys[0], "%s{top}:newest", a->ro.prefix);
	const char *gargv[] = { "GET", keys[0] };
	redisAppendCommandArgv(a->c, 2, gargv, NULL);
	redisReply *r;
	if (get_reply(a, s, &r) < 0)
		return -EIO;
	long long found = newest_minute(r);
	freeReplyObject(r);
	if (found < 0) {
		/* no P{top}:newest: an older sensor writing now, the minutes
		 * around the wall clock, newest first */
		long long wm = (long long)wall / 60;
		const char *argv[1 + K_COUNT];
		for (long long m = wm + PROBE_AHEAD; m > wm - MINUTES; m--) {
			argv[0] = "EXISTS";
			for (int k = 0; k < K_COUNT; k++) {
				snprintf(keys[k], sizeof keys[k], "%s{top}:%s:%lld", a->ro.prefix,
					 kind_tag[k], m);
				argv[1 + k] = keys[k];
			}
			redisAppendCommandArgv(a->c, 1 + K_COUNT, argv, NULL);
		}
		for (long long m = wm + PROBE_AHEAD; m > wm - MINUTES; m--) {
			if (get_reply(a, s, &r) < 0)
				return -EIO;
			if (r && r->type == REDIS_REPLY_INTEGER && r->integer > 0 && found < 0)
				found = m;
			freeReplyObject(r);
		}
	}
	if (found >= 0) {
		s->at = (double)(found * 60 + 59);
		s->at_source = "data";
	} else {
		s->at = (double)wall;
		s->at_source = "clock";
	}
	return 0;
}

struct cand {
	char *id;
	size_t len;
	double score;
};

static int cand_by_id(const void *x, const void *y)
{
	const struct cand *a = x, *b = y;
	size_t n = a->len < b->len ? a->len : b->len;
	int c = memcmp(a->id, b->id, n);
	return c ? c : (a->len > b->len) - (a->len < b->len);
}

static int cand_by_score(const void *x, const void *y)
{
	const struct cand *a = x, *b = y;
	if (a->score != b->score)
		return a->score < b->score ? 1 : -1;
	return cand_by_id(x, y);
}

/* The last bucket of a window of buckets len seconds long: see the top of
 * the file. */
static long long last_bucket(const struct snapshot *s, long len)
{
	long long b = (long long)floor(s->at / (double)len);
	return strcmp(s->at_source, "at") ? b : b - 1;
}

/* Rank one kind: the sum of its last MINUTES top keys, best n first. */
static int rank(struct app *a, struct snapshot *s, enum kind k)
{
	long long last = last_bucket(s, 60);
	char key[KEY_MAX], stop[16];
	snprintf(stop, sizeof stop, "%d", MEMBERS_MAX - 1);
	for (long long m = last - MINUTES + 1; m <= last; m++) {
		snprintf(key, sizeof key, "%s{top}:%s:%lld", a->ro.prefix, kind_tag[k], m);
		const char *argv[] = { "ZREVRANGE", key, "0", stop, "WITHSCORES" };
		redisAppendCommandArgv(a->c, 5, argv, NULL);
	}
	size_t cap = (size_t)MINUTES * MEMBERS_MAX, n = 0;
	struct cand *c = calloc(cap, sizeof *c);
	int res = 0;
	if (!c)
		res = -ENOMEM;
	for (int m = 0; m < MINUTES; m++) {
		redisReply *r;
		/* read every reply even after a failure, to keep the pipeline in step */
		if (get_reply(a, s, &r) < 0) {
			res = -EIO;
			break;
		}
		if (res < 0 || !r || r->type != REDIS_REPLY_ARRAY) {
			freeReplyObject(r);
			continue;
		}
		size_t pairs = r->elements / 2;
		if (pairs > MEMBERS_MAX)
			pairs = MEMBERS_MAX;
		for (size_t i = 0; i < pairs && n < cap; i++) {
			redisReply *mem = r->element[2 * i], *sc = r->element[2 * i + 1];
			char buf[64], *end;
			if (mem->type != REDIS_REPLY_STRING || !mem->len || mem->len > CLI_ID_MAX ||
			    sc->type != REDIS_REPLY_STRING || sc->len >= sizeof buf) {
				s->skipped++;
				continue;
			}
			memcpy(buf, sc->str, sc->len);
			buf[sc->len] = 0;
			double v = strtod(buf, &end);
			if (*end || !isfinite(v) || v < 0) {
				s->skipped++;
				continue;
			}
			c[n].id = malloc(mem->len);
			if (!c[n].id) {
				res = -ENOMEM;
				break;
			}
			memcpy(c[n].id, mem->str, mem->len);
			c[n].len = mem->len;
			c[n].score = v;
			n++;
		}
		freeReplyObject(r);
	}
	if (res == 0 && n) {
		/* merge the minutes of each entity, then best first */
		qsort(c, n, sizeof *c, cand_by_id);
		size_t w = 0;
		for (size_t i = 0; i < n; i++) {
			if (w && !cand_by_id(&c[w - 1], &c[i])) {
				c[w - 1].score += c[i].score;
				free(c[i].id);
			} else {
				c[w++] = c[i];
			}
		}
		n = w;
		qsort(c, n, sizeof *c, cand_by_score);
		size_t take = n < (size_t)a->n ? n : (size_t)a->n;
		s->rows[k] = calloc(take ? take : 1, sizeof *s->rows[k]);
		if (!s->rows[k]) {
			res = -ENOMEM;
		} else {
			for (size_t i = 0; i < take; i++) {
				struct row *rw = &s->rows[k][i];
				memcpy(rw->id, c[i].id, c[i].len);
				rw->idlen = c[i].len;
				rw->top = c[i].score;
			}
			s->nrows[k] = take;
		}
	}
	for (size_t i = 0; i < n; i++)
		free(c[i].id);
	free(c);
	if (res == -ENOMEM)
		snprintf(a->err, sizeof a->err, "out of memory");
	return res;
}

/* One entity's windows, in one pipelined round trip. */
static int fill_row(struct app *a, struct snapshot *s, enum kind k, struct row *rw)
{
	char key[KEY_MAX];
	int sent = 0;
	for (int w = 0; w < W_COUNT; w++) {
		long long last = last_bucket(s, windows[w].len);
		for (long long b = last - windows[w].count + 1; b <= last; b++) {
			char suffix[48];
			snprintf(suffix, sizeof suffix, ":c:%s:%lld", windows[w].res, b);
			size_t kl = entity_key(key, a->ro.prefix, kind_tag[k], rw->id, rw->idlen, suffix);
			const char *argv[] = { "HMGET", key, "msgs", "rcpts" };
			size_t lens[] = { 5, kl, 4, 5 };
			redisAppendCommandArgv(a->c, 4, argv, lens);
			sent++;
		}
	}
	/* distinct recipient domains: PFCOUNT of a window's buckets is the
	 * count of their union (SCHEMA.md) */
	static char pkeys[24][KEY_MAX];
	for (int w = 0; w < W_COUNT; w++) {
		const char *argv[1 + 24];
		size_t lens[1 + 24];
		argv[0] = "PFCOUNT";
		lens[0] = 7;
		long long last = last_bucket(s, windows[w].len);
		int i = 0;
		for (long long b = last - windows[w].count + 1; b <= last; b++, i++) {
			char suffix[48];
			snprintf(suffix, sizeof suffix, ":u:rdom:%s:%lld", windows[w].res, b);
			lens[1 + i] = entity_key(pkeys[i], a->ro.prefix, kind_tag[k], rw->id, rw->idlen,
						 suffix);
			argv[1 + i] = pkeys[i];
		}
		redisAppendCommandArgv(a->c, 1 + i, argv, lens);
		sent++;
	}
	if (k == K_FP) {
		size_t kl = entity_key(key, a->ro.prefix, kind_tag[k], rw->id, rw->idlen, ":sample");
		char end[16];
		snprintf(end, sizeof end, "%d", SAMPLE_MAX - 1);
		const char *argv[] = { "GETRANGE", key, "0", end };
		size_t lens[] = { 8, kl, 1, strlen(end) };
		redisAppendCommandArgv(a->c, 4, argv, lens);
		sent++;
	}
	int got = 0;
	for (int w = 0; w < W_COUNT; w++) {
		for (long i = 0; i < windows[w].count; i++, got++) {
			redisReply *r;
			if (get_reply(a, s, &r) < 0)
				return -EIO;
			if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
				rw->msgs[w] = sat_add(rw->msgs[w], parse_count(r->element[0]));
				rw->rcpts[w] = sat_add(rw->rcpts[w], parse_count(r->element[1]));
			}
			freeReplyObject(r);
		}
	}
	for (int w = 0; w < W_COUNT; w++, got++) {
		redisReply *r;
		if (get_reply(a, s, &r) < 0)
			return -EIO;
		rw->rdoms[w] = parse_count(r);
		freeReplyObject(r);
	}
	if (k == K_FP) {
		redisReply *r;
		if (get_reply(a, s, &r) < 0)
			return -EIO;
		if (r && r->type == REDIS_REPLY_STRING && r->len) {
			rw->sample_len = r->len < SAMPLE_MAX ? r->len : SAMPLE_MAX;
			memcpy(rw->sample, r->str, rw->sample_len);
			rw->sample[rw->sample_len] = 0;
			rw->has_sample = true;
		}
		freeReplyObject(r);
		got++;
	}
	return got == sent ? 0 : -EPROTO;
}

static void snapshot_free(struct snapshot *s)
{
	for (int k = 0; k < K_COUNT; k++) {
		free(s->rows[k]);
		s->rows[k] = NULL;
		s->nrows[k] = 0;
	}
}

static int take_snapshot(struct app *a, struct snapshot *s)
{
	memset(s, 0, sizeof *s);
	if (!a->c) {
		int e = redis_conn_open(&a->target, TIMEOUT_MS, PROG, &a->c, a->err, sizeof a->err);
		if (e < 0)
			return e;
	}
	int e = resolve_now(a, s);
	for (int k = 0; k < K_COUNT && !e; k++) {
		e = rank(a, s, (enum kind)k);
		for (size_t i = 0; i < s->nrows[k] && !e; i++)
			e = fill_row(a, s, (enum kind)k, &s->rows[k][i]);
	}
	if (e == -EIO || e == -EPROTO)
		disconnect(a);
	return e;
}

/* --- output -------------------------------------------------------------------- */

/* At most 5 characters: exact below 100000, then k, M, G, T. */
static void fmt_count(long long v, char *out, size_t outsz)
{
	if (v < 100000)
		snprintf(out, outsz, "%lld", v);
	else if (v < 1000000)
		snprintf(out, outsz, "%lldk", v / 1000);
	else if (v < 10000000)
		snprintf(out, outsz, "%.1fM", floor((double)v / 1e5) / 10);
	else if (v < 1000000000)
		snprintf(out, outsz, "%lldM", v / 1000000);
	else if (v < 1000000000000LL)
		snprintf(out, outsz, "%lldG", v / 1000000000);
	else
		snprintf(out, outsz, "%lldT", v / 1000000000000LL < 9999 ? v / 1000000000000LL : 9999);
}

static void pad(FILE *out, size_t cols, size_t want)
{
	for (; cols < want; cols++)
		fputc(' ', out);
}

static void render_text(const struct app *a, const struct snapshot *s, int e, FILE *out)
{
	bool tty = a->width > 0;
	size_t ecols = ENTITY_COLS_PIPE;
	if (tty) {
		long room = (long)a->width - GROUPS_COLS - 1;
		ecols = room < ENTITY_COLS_MIN ? ENTITY_COLS_MIN
			: room > ENTITY_COLS_MAX ? ENTITY_COLS_MAX : (size_t)room;
	}
	const char *bold = a->color ? "\033[1m" : "", *off = a->color ? "\033[0m" : "";
	char when[64];
	cli_iso_local(e == -EIO ? (double)time(NULL) : s->at, when, sizeof when);
	fprintf(out, "%s" PROG "%s  %s  prefix %s", bold, off, a->where, a->ro.prefix);
	if (e == -EIO) {
		char msg[ERR_MAX];
		cli_text(a->err, strlen(a->err), false, 200, msg, sizeof msg);
		fprintf(out, "\n\n%s; retrying every %g s%s\n", msg, a->interval,
			tty ? "  (q quits)" : "");
		return;
	}
	static const char *const source[] = { "at", "given with --at", "data",
					      "the newest minute in Redis", "clock",
					      "the wall clock: no top keys in Redis" };
	const char *why = s->at_source;
	for (size_t i = 0; i < sizeof source / sizeof source[0]; i += 2)
		if (!strcmp(source[i], s->at_source))
			why = source[i + 1];
	fprintf(out, "  windows end %s (%s)%s\n", when, why, tty ? "  q quits" : "");
	if (!strcmp(s->at_source, "at")) {
		/* whole buckets: each window ends with the last one ended by then */
		fprintf(out, "windows of whole buckets ended by then:");
		for (int w = 0; w < W_COUNT; w++) {
			time_t end = (time_t)((last_bucket(s, windows[w].len) + 1) * windows[w].len);
			struct tm tm;
			char hm[16];
			if (!localtime_r(&end, &tm) || !strftime(hm, sizeof hm, "%H:%M", &tm))
				snprintf(hm, sizeof hm, "?");
			fprintf(out, "%s %s to %s", w ? "," : "", windows[w].name, hm);
		}
		fputc('\n', out);
		/* "(none in the 10 minutes to ...)" below: the 10m window's end */
		cli_iso_local((double)((last_bucket(s, 60) + 1) * 60), when, sizeof when);
	}
	if (s->warn[0])
		fprintf(out, "warning: Redis refused a read: %s\n", s->warn);
	if (s->skipped)
		fprintf(out, "warning: %" PRIu64 " top entries skipped (ID over %d bytes or bad score)\n",
			s->skipped, CLI_ID_MAX);
	for (int k = 0; k < K_COUNT; k++) {
		fputc('\n', out);
		fprintf(out, "%s%s%s", bold, kind_title[k], off);
		pad(out, strlen(kind_title[k]), ecols);
		fprintf(out, " ------ msgs ------ ----- rcpts ------ -- rcpt domains --%s\n",
			k == K_FP ? "  sample subject" : "");
		pad(out, 0, ecols);
		for (int g = 0; g < 3; g++)
			fprintf(out, " %*s%*s%*s", NUM_COLS, "10m", NUM_COLS, "1h", NUM_COLS, "24h");
		fputc('\n', out);
		if (!s->nrows[k])
			fprintf(out, "(none in the 10 minutes to %s)\n", when);
		for (size_t i = 0; i < s->nrows[k]; i++) {
			const struct row *r = &s->rows[k][i];
			char dec[CLI_ID_MAX + 1], cell[ENTITY_COLS_MAX * 12 + 16];
			size_t dl = cli_id_decode(r->id, r->idlen, dec, sizeof dec);
			size_t used = cli_text(dec, dl, false, ecols, cell, sizeof cell);
			fputs(cell, out);
			pad(out, used, ecols);
			const long long *vals[3] = { r->msgs, r->rcpts, r->rdoms };
			for (int g = 0; g < 3; g++) {
				fputc(' ', out);
				for (int w = 0; w < W_COUNT; w++) {
					char num[16];
					fmt_count(vals[g][w], num, sizeof num);
					fprintf(out, "%*s", NUM_COLS, num);
				}
			}
			if (k == K_FP && r->has_sample) {
				long room = tty ? (long)a->width - (long)ecols - GROUPS_COLS - 2
						: SUBJECT_COLS_PIPE;
				char subj[SAMPLE_MAX * 4 + 16];
				if (room >= 8) {
					cli_text(r->sample, r->sample_len, false, (size_t)room, subj,
						 sizeof subj);
					fprintf(out, "  %s", subj);
				}
			}
			fputc('\n', out);
		}
	}
}

static json_t *json_text(const char *s, size_t n)
{
	char *buf = malloc(n * 3 + 1);
	if (!buf)
		return NULL;
	size_t l = cli_utf8_clean(s, n, buf, n * 3 + 1);
	json_t *j = json_stringn(buf, l);
	free(buf);
	return j;
}

static json_t *json_windows(const long long *v)
{
	json_t *o = json_object();
	for (int w = 0; w < W_COUNT; w++)
		json_object_set_new(o, windows[w].name, json_integer(v[w]));
	return o;
}

static int render_json(const struct app *a, const struct snapshot *s, FILE *out)
{
	json_t *doc = json_object();
	char when[64];
	cli_iso_local(s->at, when, sizeof when);
	json_object_set_new(doc, "at", json_integer((json_int_t)floor(s->at)));
	json_object_set_new(doc, "at_iso", json_string(when));
	json_object_set_new(doc, "at_source", json_string(s->at_source));
	json_object_set_new(doc, "prefix", json_text(a->ro.prefix, strlen(a->ro.prefix)));
	if (s->skipped)
		json_object_set_new(doc, "skipped", json_integer((json_int_t)s->skipped));
	if (s->warn[0])
		json_object_set_new(doc, "warning", json_string(s->warn));
	for (int k = 0; k < K_COUNT; k++) {
		json_t *arr = json_array();
		for (size_t i = 0; i < s->nrows[k]; i++) {
			const struct row *r = &s->rows[k][i];
			char dec[CLI_ID_MAX + 1];
			size_t dl = cli_id_decode(r->id, r->idlen, dec, sizeof dec);
			json_t *o = json_object();
			json_object_set_new(o, "id", json_text(r->id, r->idlen));
			json_object_set_new(o, "name", json_text(dec, dl));
			json_object_set_new(o, "top_10m", json_integer((json_int_t)r->top));
			json_object_set_new(o, "msgs", json_windows(r->msgs));
			json_object_set_new(o, "rcpts", json_windows(r->rcpts));
			json_object_set_new(o, "rcpt_domains", json_windows(r->rdoms));
			if (k == K_FP)
				json_object_set_new(o, "sample_subject",
						    r->has_sample ? json_text(r->sample, r->sample_len)
								  : json_null());
			json_array_append_new(arr, o);
		}
		json_object_set_new(doc, kind_json[k], arr);
	}
	int res = json_dumpf(doc, out, JSON_INDENT(2)) < 0 ? -EIO : 0;
	fputc('\n', out);
	json_decref(doc);
	return res;
}

/* --- the terminal -------------------------------------------------------------- */

static struct termios saved_tio;
static bool tio_saved;

static void term_size(struct app *a)
{
	struct winsize ws;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
		a->width = ws.ws_col;
		a->height = ws.ws_row;
	} else {
		a->width = 80;
		a->height = 24;
	}
}

static void term_enter(void)
{
	if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved_tio) == 0) {
		struct termios t = saved_tio;
		t.c_lflag &= (tcflag_t)~(ICANON | ECHO);   /* ISIG stays: Ctrl-C works */
		t.c_cc[VMIN] = 0;
		t.c_cc[VTIME] = 0;
		if (tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0)
			tio_saved = true;
	}
	fputs("\033[?1049h\033[?25l", stdout);   /* alternate screen, no cursor */
	fflush(stdout);
}

static void term_leave(void)
{
	fputs("\033[?25h\033[?1049l", stdout);
	fflush(stdout);
	if (tio_saved)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
}

/* Wait for the next refresh: the interval, a key (q quits), a resize or a
 * signal. */
static void wait_key(const struct app *a, bool *stdin_open)
{
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		double left = a->interval - ((double)(now.tv_sec - start.tv_sec) +
					     (double)(now.tv_nsec - start.tv_nsec) / 1e9);
		if (left <= 0 || stop_requested || winch)
			return;
		struct pollfd p = { STDIN_FILENO, POLLIN, 0 };
		int r = poll(&p, *stdin_open ? 1 : 0, (int)ceil(left * 1000));
		if (r <= 0)
			continue;              /* timeout, or a signal: look again */
		char buf[64];
		ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
		if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
			*stdin_open = false;   /* EOF or hang-up: stop polling it */
			continue;
		}
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] == 'q' || buf[i] == 'Q') {
				stop_requested = 1;
				return;
			}
	}
}

static int refresh_loop(struct app *a)
{
	bool stdin_open = true;
	term_enter();
	while (!stop_requested) {
		winch = 0;
		term_size(a);
		struct snapshot s;
		int e = take_snapshot(a, &s);
		if (e == -EACCES) {
			/* a refused login does not get better by waiting */
			snapshot_free(&s);
			term_leave();
			fprintf(stderr, PROG ": %s\n", a->err);
			return CLI_EXIT_RUNTIME;
		}
		char *frame = NULL;
		size_t len = 0;
		FILE *m = open_memstream(&frame, &len);
		if (!m) {
			snapshot_free(&s);
			break;
		}
		if (e == 0 || e == -EIO)
			render_text(a, &s, e, m);
		else
			fprintf(m, PROG ": %s\n", a->err);
		fclose(m);
		snapshot_free(&s);
		/* one screen: cut what does not fit instead of scrolling the top away */
		size_t cut = len;
		int lines = 0;
		for (size_t i = 0; i < len; i++)
			if (frame[i] == '\n' && ++lines >= a->height - 1) {
				cut = i + 1;
				break;
			}
		fputs("\033[H\033[2J", stdout);
		fwrite(frame, 1, cut, stdout);
		fflush(stdout);
		free(frame);
		wait_key(a, &stdin_open);
	}
	term_leave();
	return CLI_EXIT_OK;
}

/* --- main ---------------------------------------------------------------------- */

static void usage(void)
{
	printf(
"Usage: " PROG " [OPTIONS]\n"
"Show who sends most now: the accounts, subject fingerprints and client addresses\n"
"with the most messages in the last 10 minutes, with their messages, accepted\n"
"recipients and distinct recipient domains over 10 minutes, 1 hour and 24 hours,\n"
"as the relaywatch sensor counts them in Redis.\n"
"\n"
"On a terminal the table refreshes like top(1) (q or Ctrl-C quits); otherwise it is\n"
"printed once.\n"
"\n"
"  -n N               rows per section [%d]\n"
"  --interval SECONDS refresh period on a terminal [2]\n"
"  --once             print once and exit\n"
"  --json             print one JSON document and exit: for each section an array of\n"
"                     {id (as in the keys), name (decoded), top_10m, msgs, rcpts,\n"
"                     rcpt_domains (each {10m, 1h, 24h}), sample_subject (fingerprints)}\n"
"  --at WHEN          end the windows at WHEN: unix seconds, 2026-11-23T10:00 (local\n"
"                     time, or add Z or +09:00), or 10m/1h ago. Windows are whole\n"
"                     buckets (minutes, 5 minutes, hours): each ends with the last\n"
"                     bucket that ends at or before WHEN, so nothing after WHEN counts\n"
"                     (WHEN 10:07:30: 10m is 09:57-10:07, 1h 09:05-10:05, 24h ends\n"
"                     at 10:00). Default: the newest minute in Redis (counters are\n"
"                     kept in packet time, so a replayed capture is shown at its own\n"
"                     time; data of a sensor older than this one only when it is\n"
"                     around now), else now; the current buckets are then included\n"
"Redis:\n"
CLI_HELP_REDIS
"\n"
"Entity names are shown decoded (the keys hold them percent-escaped), with control\n"
"characters escaped and long names cut (…). Exit status: 0 done, 1 runtime error\n"
"(Redis unreachable with --once or --json; a refused login, also in the live view),\n"
"2 usage error.\n"
"\n"
"Examples:\n"
"  " PROG "                                  # live view of the local Redis\n"
"  " PROG " -n 5 --once                      # a quick look, e.g. for a ticket\n"
"  " PROG " --json | jq '.accounts[] | select(.rcpts[\"1h\"] > 500) | .name'\n"
"  relaywatch -r incident.pcap --redis redis://127.0.0.1:6379 && " PROG " --once\n"
"  " PROG " --at 2026-11-23T10:00 --once     # the 10 minutes before 10:00\n",
	TOP_N_DEFAULT);
}

int main(int argc, char **argv)
{
	static struct app app;
	struct app *a = &app;
	cli_redis_init(&a->ro);
	a->n = TOP_N_DEFAULT;
	a->interval = 2;
	enum { OPT_ONCE = CLI_OPT_FIRST_FREE, OPT_JSON, OPT_AT, OPT_INTERVAL };
	static const struct option lopts[] = {
		CLI_LONG_OPTIONS,
		{ "once", no_argument, NULL, OPT_ONCE },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "at", required_argument, NULL, OPT_AT },
		{ "interval", required_argument, NULL, OPT_INTERVAL },
		{ 0 },
	};
	int c;
	double v;
	opterr = 0;
	if (cli_check_password_option(PROG, argc, argv))
		return CLI_EXIT_USAGE;
	while ((c = getopt_long(argc, argv, ":hVn:", lopts, NULL)) != -1) {
		if (cli_redis_option(&a->ro, c, optarg))
			continue;
		switch (c) {
		case 'h':
			usage();
			return CLI_EXIT_OK;
		case 'V':
			cli_print_version(PROG);
			return CLI_EXIT_OK;
		case 'n':
			if (cli_parse_double(optarg, 1, TOP_N_MAX, &v) < 0 || v != floor(v))
				return cli_usage_error(PROG, "-n '%s': a whole number from 1 to %d",
						       optarg, TOP_N_MAX);
			a->n = (long)v;
			break;
		case OPT_ONCE:
			a->once = true;
			break;
		case OPT_JSON:
			a->json = true;
			break;
		case OPT_AT:
			if (cli_parse_time(optarg, (double)time(NULL), &a->at) < 0)
				return cli_usage_error(PROG, "--at '%s': expected unix seconds, "
						       "2026-11-23T10:00, or 10m/1h ago", optarg);
			a->at_given = true;
			break;
		case OPT_INTERVAL:
			if (cli_parse_double(optarg, 0.1, 3600, &a->interval) < 0)
				return cli_usage_error(PROG, "--interval '%s': seconds from 0.1 to 3600",
						       optarg);
			break;
		case ':':
			return cli_usage_error(PROG, "%s needs a value", argv[optind - 1]);
		default:
			return cli_usage_error(PROG, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage_error(PROG, "unexpected argument '%s'", argv[optind]);
	if (cli_redis_target(&a->ro, &a->target, a->err, sizeof a->err) < 0)
		return cli_usage_error(PROG, "%s", a->err);
	redis_target_describe(&a->target, a->where, sizeof a->where);

	struct sigaction sa = { 0 };
	sa.sa_handler = on_signal;    /* no SA_RESTART: poll() must return */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGWINCH, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	int status = CLI_EXIT_OK;
	bool refresh = !a->once && !a->json && isatty(STDOUT_FILENO);
	if (refresh) {
		a->color = cli_color_wanted(STDOUT_FILENO, a->ro.no_color);
		status = refresh_loop(a);
	} else {
		a->color = !a->json && cli_color_wanted(STDOUT_FILENO, a->ro.no_color);
		struct snapshot s;
		int e = take_snapshot(a, &s);
		if (e < 0) {
			fprintf(stderr, PROG ": %s\n", a->err);
			status = CLI_EXIT_RUNTIME;
		} else if (a->json) {
			if (render_json(a, &s, stdout) < 0)
				status = CLI_EXIT_RUNTIME;
		} else {
			render_text(a, &s, 0, stdout);
		}
		snapshot_free(&s);
		if (fflush(stdout) == EOF && errno != EPIPE) {
			fprintf(stderr, PROG ": writing: %s\n", strerror(errno));
			status = CLI_EXIT_RUNTIME;
		}
	}
	if (a->c)
		disconnect(a);
	redis_target_wipe(&a->target);
	return status;
}

/* counters.c — deltas, batches, the writer thread; see counters.h.
 *
 * Data flow (capture thread on the left, writer thread on the right):
 *
 *   counters_record() -> delta (entity, minute) in the current batch,
 *                        also linked to the entity's FIFO of unacked deltas
 *   counters_tick()   -> cut: the batch joins the send queue ---------> pipeline
 *                                                                      EVALSHA x N
 *   take_done()       <- batch acknowledged, with per-entity windows <-- replies
 *                        entity snapshot := Redis buckets; pop its deltas
 *
 * An entity's view is its snapshot (per-bucket counts Redis returned with
 * the last acknowledged batch, so a window slides exactly) plus its unacked
 * deltas. Batches carry (run, seq); the scripts skip a batch they already
 * applied, which makes a replay after a crash exact. */
#include "counters.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <xxhash.h>

#include "counters-lua.h"
#include "redis_conn.h"
#include "rw-config.h"
#include "siphash.h"
#include "utf8.h"

static const char *const field_names[F_COUNT] = {
	"msgs", "rcpts", "rcpts_rej", "bytes", "unauth", "fake_reply", "gib", "auth_fail",
	"auth_ok", "sessions", "tls_sessions", "tls_bytes",
};
static const char *const hll_names[H_COUNT] = { "rcpt", "rdom", "acct", "tried" };
/* The distinct counts flush.lua is asked for on a whole-window read
 * ("MODE:kinds"): those a view of that type is documented to carry
 * (counters.h); a multi-key PFCOUNT is the costliest thing the script does. */
static const char *const dist_kinds[ENT_TYPE_COUNT] = {
	[ENT_ACCOUNT] = "rdom", [ENT_CLIENT] = "tried,acct", [ENT_FP] = "acct",
	[ENT_SHAPE] = "acct", [ENT_DOMAIN] = "rdom",
};
static const char *const type_tags[ENT_TYPE_COUNT] = { "acct", "ip", "fp", "shape", "dom" };
static const char *const type_names[ENT_TYPE_COUNT] = {
	"account", "client", "fingerprint", "shape", "domain",
};

/* rw:stats fields and the events that feed them */
enum stat { S_MSGS, S_RCPTS, S_RCPTS_REJ, S_BYTES, S_SESSIONS, S_TLS_SESSIONS, S_AUTH_FAIL,
	    S_COUNT };
static const char *const stat_names[S_COUNT] = {
	"msgs", "rcpts", "rcpts_rejected", "bytes", "sessions", "tls_sessions", "auth_failures",
};

#define SAMPLE_MAX 200          /* bytes of a sample subject kept */
#define ARENA_CHUNK (64 * 1024)
#define MAX_BATCHES_PER_TRIP 32  /* after an outage, replay in chunks */
#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 30000
#define BUCKETS_MAX 24          /* snapshot buckets kept per entity (10 m + 12 f) */
/* An entity's whole windows (and distinct counts, and baseline) are read
 * back from Redis when it is first seen and then at most this often; in
 * between, each flush returns the buckets it wrote to. What another sensor
 * adds to buckets this one does not write reaches its view within this time. */
#define REFRESH_MIN 5

/* --- arenas: one per batch, freed with it ---------------------------------------- */

struct arena_chunk {
	struct arena_chunk *next;
	size_t used, cap;
	char data[];
};

struct arena {
	struct arena_chunk *head;
	size_t bytes;
};

static void *arena_alloc(struct arena *a, size_t n)
{
	n = (n + 7) & ~(size_t)7;
	if (!a->head || a->head->used + n > a->head->cap) {
		size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
		struct arena_chunk *c = malloc(sizeof *c + cap);
		if (!c)
			return NULL;
		c->next = a->head;
		c->used = 0;
		c->cap = cap;
		a->head = c;
		a->bytes += sizeof *c + cap;
	}
	void *p = a->head->data + a->head->used;
	a->head->used += n;
	return p;
}

static char *arena_strdup(struct arena *a, const char *s, size_t n)
{
	char *p = arena_alloc(a, n + 1);
	if (p) {
		memcpy(p, s, n);
		p[n] = 0;
	}
	return p;
}

static void arena_free(struct arena *a)
{
	while (a->head) {
		struct arena_chunk *n = a->head->next;
		free(a->head);
		a->head = n;
	}
	a->bytes = 0;
}

/* --- entities and deltas ------------------------------------------------------------ */

struct member {
	struct member *next;     /* the delta's members */
	uint8_t kind;            /* enum counter_hll */
	uint16_t len;
	char s[];
};

struct ent;

/* Results the writer fills for one delta: the entity's buckets in the
 * 10 m and 1 h windows, its distinct counts and its baseline. */
struct bucket {
	uint32_t id;             /* minute, or five-minute bucket */
	uint8_t res;             /* 'm' or 'f' */
	uint64_t v[F_COUNT];
};

struct batch;

struct delta {
	struct ent *ent;
	struct batch *batch;
	uint64_t seq;
	uint32_t minute;
	/* 1, 2, ...: this entity's deltas in this batch, one per minute it
	 * touches (a batch can span a minute boundary), in the order they are
	 * sent; flush.lua applies each (seq, sub) once. */
	uint32_t sub;
	uint64_t v[F_COUNT];
	struct member *members;        /* distinct within the delta */
	unsigned nmembers;
	unsigned nmem[H_COUNT];        /* of members, per kind */
	/* flush.lua mode: 0 returns only the buckets written to, 1 the whole
	 * windows and distinct counts (the first delta of an entity in each
	 * minute), 2 also the baseline. */
	uint8_t mode;
	const char *sample;
	struct delta *next_in_ent, *next_in_batch;
	/* filled by the writer */
	bool has_result;
	bool full_result;         /* whole windows and distinct counts */
	unsigned nbuckets;
	struct bucket *buckets;   /* in the batch arena */
	uint64_t distinct[W_COUNT][H_COUNT];
	bool has_base;
	double base[3];
	uint32_t hours;
};

struct first_slot {
	uint32_t minute;
	uint64_t first_us;
};

struct ent {
	struct ent *hnext;
	struct ent *lru_prev, *lru_next;
	uint64_t hash;
	uint8_t type;
	bool known;
	bool base_learned;
	double base[3];
	uint32_t hours;
	struct delta *pend_head, *pend_tail;
	unsigned npend;
	struct delta *cur;            /* this batch's delta for the current minute */
	uint32_t full_minute;         /* minute + 1 of the last whole-window request, 0 none */
	unsigned nbuckets;
	struct bucket buckets[BUCKETS_MAX];
	uint32_t dist_minute;         /* minute the distinct snapshot was taken */
	uint64_t distinct[W_COUNT][H_COUNT];
	struct first_slot first[10];
	uint16_t id_off, id_len;      /* the ID inside key */
	char key[];                   /* "P{tag:ID}" */
};

struct alert_item {
	struct alert_item *next;
	bool taken;               /* alert.lua answered: never sent again */
	char *cool_key;
	int argc;
	char **argv;
	size_t *argvlen;
	char *mem;
};

struct batch {
	struct batch *next;
	uint64_t seq;
	uint64_t now_us;
	uint64_t events;
	struct arena arena;
	struct delta *head, *tail;
	unsigned ndeltas;
	/* 64-bit hashes of (delta, kind, member) of this batch, to drop
	 * repeats (a sender writing to the same recipients all day); open
	 * addressing, 0 = empty; freed when the batch is cut */
	uint64_t *mtab;
	uint32_t mmask, mcount;
	int64_t stats[S_COUNT];
	bool has_health;
	struct counters_health health;
	uint64_t pending_snapshot;   /* events pending when cut, for the health hash */
	bool done;
};

struct counters {
	struct counters_config cfg;
	char prefix[COUNTERS_PREFIX_MAX + 1];
	char sensor[128];
	char run[24];
	char where[600];
	struct redis_target target;
	bool embedded_wanted;            /* --redis embedded: started by counters_start() */
	struct redis_embedded *embedded;
	uint8_t pseudo_key[16];
	bool pseudonymize;
	uint64_t hash_seed;

	/* capture-thread state */
	struct ent **table;
	uint32_t table_mask;
	struct ent *lru_head, *lru_tail; /* least recently used first */
	uint32_t nents;
	struct batch *cur;
	uint64_t next_seq;
	uint64_t tick_us;                /* flush interval */
	uint64_t next_cut_us;
	uint64_t last_now_us;
	uint64_t last_cut_hour;
	struct counters_health health;
	bool has_health;

	/* shared with the writer, under mu */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_cond_t round_done;       /* the writer finished a round (either way) */
	uint64_t rounds;                 /* rounds finished, under mu */
	pthread_t writer;
	bool writer_started;
	bool stopping;
	double stop_deadline;            /* monotonic seconds */
	struct batch *q_head, *q_tail;   /* waiting or in flight, in order */
	struct batch *inflight_until;    /* batches up to this one are being sent */
	struct batch *done_head, *done_tail;
	atomic_bool done_ready;          /* done_head is non-empty: a lock-free peek */
	struct alert_item *a_head, *a_tail;
	uint64_t pending_events;         /* events in q (not yet acknowledged) */
	struct counters_stats st;

	/* writer-only */
	redisContext *rc;
	char sha[5][41];
};

const char *counters_entity_type_name(enum entity_type t) { return type_names[t]; }
const char *counters_field_name(enum counter_field f) { return field_names[f]; }

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* --- entity IDs ------------------------------------------------------------------------ */

/* Make a wire-controlled ID safe inside a key and a hash tag (SCHEMA.md). */
static size_t escape_id(const char *id, char *out, size_t outsz)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)id; *p; p++) {
		bool plain = *p > 0x20 && *p < 0x7f && !strchr("{}%:", *p);
		size_t need = plain ? 1 : 3;
		if (o + need >= outsz || o + need > COUNTERS_ID_MAX)
			break;
		if (plain) {
			out[o++] = (char)*p;
		} else {
			out[o++] = '%';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		}
	}
	out[o] = 0;
	return o;
}

bool counters_pseudonymizing(const struct counters *c)
{
	return c->pseudonymize;
}

void counters_entity_id(const struct counters *c, enum entity_type t, const char *id,
			char *out, size_t outsz)
{
	if (t == ENT_ACCOUNT && c->pseudonymize) {
		uint64_t h = siphash24(c->pseudo_key, id, strlen(id));
		snprintf(out, outsz, "h:%016" PRIx64, h);
		return;
	}
	escape_id(id, out, outsz);
}

/* --- the entity table (capture thread) ----------------------------------------------- */

static void lru_unlink(struct counters *c, struct ent *e)
{
	if (e->lru_prev)
		e->lru_prev->lru_next = e->lru_next;
	else
		c->lru_head = e->lru_next;
	if (e->lru_next)
		e->lru_next->lru_prev = e->lru_prev;
	else
		c->lru_tail = e->lru_prev;
	e->lru_prev = e->lru_next = NULL;
}

static void lru_push(struct counters *c, struct ent *e)
{
	e->lru_prev = c->lru_tail;
	e->lru_next = NULL;
	if (c->lru_tail)
		c->lru_tail->lru_next = e;
	else
		c->lru_head = e;
	c->lru_tail = e;
}

static void ent_remove(struct counters *c, struct ent *e)
{
	struct ent **pp = &c->table[e->hash & c->table_mask];
	while (*pp && *pp != e)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = e->hnext;
	lru_unlink(c, e);
	free(e);
	c->nents--;
}

/* Find (or, if create, make) the entity with key "P{tag:ID}". When the table
 * is full the least recently used entity without unacknowledged deltas makes
 * room (its Redis totals come back with its next batch). */
static struct ent *ent_get(struct counters *c, enum entity_type t, const char *id, bool create)
{
	char eid[COUNTERS_ID_MAX + 1];
	counters_entity_id(c, t, id, eid, sizeof eid);
	size_t idn = strlen(eid);
	/* looked up by (type, ID): the key is formatted only for a new entity */
	uint64_t h = XXH3_64bits_withSeed(eid, idn, c->hash_seed + (uint64_t)t);
	for (struct ent *e = c->table[h & c->table_mask]; e; e = e->hnext) {
		if (e->hash == h && e->type == t && e->id_len == idn &&
		    !memcmp(e->key + e->id_off, eid, idn)) {
			lru_unlink(c, e);
			lru_push(c, e);
			return e;
		}
	}
	if (!create)
		return NULL;
	char key[COUNTERS_ID_MAX + 96];
	int n = snprintf(key, sizeof key, "%s{%s:%s}", c->prefix, type_tags[t], eid);
	if (c->nents >= c->cfg.max_entities) {
		struct ent *v = c->lru_head;
		while (v && v->npend)
			v = v->lru_next;
		if (!v) {
			c->st.entities_refused++;
			return NULL;
		}
		ent_remove(c, v);
		c->st.entities_evicted++;
	}
	struct ent *e = calloc(1, sizeof *e + (size_t)n + 1);
	if (!e) {
		c->st.entities_refused++;
		return NULL;
	}
	memcpy(e->key, key, (size_t)n + 1);
	e->id_off = (uint16_t)((size_t)n - 1 - idn);
	e->id_len = (uint16_t)idn;
	e->hash = h;
	e->type = (uint8_t)t;
	e->hnext = c->table[h & c->table_mask];
	c->table[h & c->table_mask] = e;
	lru_push(c, e);
	c->nents++;
	return e;
}

static struct batch *batch_new(struct counters *c)
{
	struct batch *b = calloc(1, sizeof *b);
	if (b)
		b->seq = ++c->next_seq;
	return b;
}

/* The delta of entity e for minute m in the current batch. */
static struct delta *delta_for(struct counters *c, struct ent *e, uint32_t minute)
{
	struct batch *b = c->cur;
	if (e->cur && e->cur->seq == b->seq && e->cur->minute == minute)
		return e->cur;
	struct delta *d = arena_alloc(&b->arena, sizeof *d);
	if (!d)
		return NULL;
	memset(d, 0, sizeof *d);
	d->ent = e;
	d->batch = b;
	d->seq = b->seq;
	d->minute = minute;
	d->sub = e->cur && e->cur->seq == b->seq ? e->cur->sub + 1 : 1;
	if (!e->full_minute || minute + 1 < e->full_minute ||
	    minute + 1 >= e->full_minute + REFRESH_MIN) {
		e->full_minute = minute + 1;
		d->mode = e->type == ENT_ACCOUNT || e->type == ENT_CLIENT ? 2 : 1;
	}
	if (b->tail)
		b->tail->next_in_batch = d;
	else
		b->head = d;
	b->tail = d;
	b->ndeltas++;
	if (e->pend_tail)
		e->pend_tail->next_in_ent = d;
	else
		e->pend_head = d;
	e->pend_tail = d;
	e->npend++;
	e->cur = d;
	return d;
}

static void note_first(struct ent *e, uint32_t minute, uint64_t ts_us)
{
	struct first_slot *s = &e->first[minute % 10];
	if (s->minute != minute || !s->first_us) {
		s->minute = minute;
		s->first_us = ts_us;
	}
}

/* One event's contribution to entity (t, id). */
static struct delta *add(struct counters *c, enum entity_type t, const char *id,
			 uint64_t ts_us, const uint64_t v[F_COUNT])
{
	if (!id || !*id)
		return NULL;
	struct ent *e = ent_get(c, t, id, true);
	if (!e)
		return NULL;
	uint32_t minute = (uint32_t)(ts_us / 60000000u);
	struct delta *d = delta_for(c, e, minute);
	if (!d)
		return NULL;
	for (int f = 0; f < F_COUNT; f++)
		d->v[f] += v[f];
	note_first(e, minute, ts_us);
	return d;
}

/* Insert h; false if it was there. The table is kept at most half full. */
static bool mtab_insert(uint64_t *t, uint32_t mask, uint64_t h)
{
	for (uint32_t i = (uint32_t)h & mask;; i = (i + 1) & mask) {
		if (t[i] == h)
			return false;
		if (!t[i]) {
			t[i] = h;
			return true;
		}
	}
}

static bool mtab_grow(struct batch *b)
{
	uint32_t cap = b->mtab ? (b->mmask + 1) * 2 : 4096;
	uint64_t *t = calloc(cap, sizeof *t);
	if (!t)
		return false;
	for (uint32_t i = 0; b->mtab && i <= b->mmask; i++)
		if (b->mtab[i])
			mtab_insert(t, cap - 1, b->mtab[i]);
	free(b->mtab);
	b->mtab = t;
	b->mmask = cap - 1;
	return true;
}

/* A distinct member (recipient, domain, account) of delta d; a repeat within
 * the batch is dropped here rather than sent to PFADD again. Repeats are
 * recognised by a 64-bit keyed hash alone: a collision (p ~ n^2 / 2^65)
 * would leave one member out of one HyperLogLog update. */
static void add_member(struct counters *c, struct delta *d, enum counter_hll kind, const char *s)
{
	if (!d || !s || !*s)
		return;
	struct batch *b = c->cur;
	if (2 * b->mcount >= (b->mtab ? b->mmask + 1 : 0) && !mtab_grow(b))
		return;
	size_t n = strnlen(s, COUNTERS_ID_MAX);
	uint64_t h = XXH3_64bits_withSeed(s, n, c->hash_seed ^ ((uint64_t)(uintptr_t)d << 2 | kind));
	if (!h)
		h = 1;
	if (!mtab_insert(b->mtab, b->mmask, h))
		return;
	struct member *m = arena_alloc(&b->arena, sizeof *m + n + 1);
	if (!m)
		return;
	m->kind = (uint8_t)kind;
	m->len = (uint16_t)n;
	memcpy(m->s, s, n);
	m->s[n] = 0;
	m->next = d->members;
	d->members = m;
	b->mcount++;
	d->nmembers++;
	d->nmem[kind]++;
}

static void set_sample(struct counters *c, struct delta *d, const char *subject)
{
	if (!d || !subject || d->sample)
		return;
	d->sample = arena_strdup(&c->cur->arena, subject,
				 utf8_cut(subject, strlen(subject), SAMPLE_MAX));
}

/* --- events ----------------------------------------------------------------------------- */

static void count_event(struct counters *c)
{
	c->cur->events++;
}

void counters_record(struct counters *c, const struct rw_record *r)
{
	const struct smtp_txn *t = r->txn;
	/* A message counts when its content was accepted, or ended where no
	 * replies are visible (a one-sided capture). */
	bool msg = t->data_done && ((t->data_code >= 200 && t->data_code < 300) ||
				    (!t->replies_seen && t->data_code == 0));
	uint64_t v[F_COUNT] = { 0 };
	v[F_MSGS] = msg;
	v[F_RCPTS] = t->replies_seen ? t->rcpt_accepted : t->rcpt_total;
	v[F_RCPTS_REJ] = t->rcpt_rejected;
	v[F_BYTES] = msg ? t->size : 0;
	v[F_UNAUTH] = msg && !r->authenticated;
	v[F_FAKE_REPLY] = msg && r->fake_reply;
	v[F_GIB] = msg && r->has_subject && r->subj.gibberish;
	if (!v[F_MSGS] && !v[F_RCPTS] && !v[F_RCPTS_REJ])
		return; /* nothing a rule or a graph could use */
	count_event(c);

	char domains[SMTP_RCPT_KEEP_MAX][ADDRESS_MAX + 1];
	unsigned nd = 0;
	for (unsigned i = 0; i < t->n_rcpt; i++) {
		const char *d = address_domain(t->rcpt[i]);
		if (*d && nd < SMTP_RCPT_KEEP_MAX) {
			snprintf(domains[nd], sizeof domains[nd], "%s", d);
			for (char *p = domains[nd]; *p; p++)
				if (*p >= 'A' && *p <= 'Z')
					*p = (char)(*p - 'A' + 'a');
			nd++;
		}
	}
	struct delta *ds[ENT_TYPE_COUNT] = { 0 };
	ds[ENT_ACCOUNT] = add(c, ENT_ACCOUNT, r->account, r->ts_us, v);
	ds[ENT_CLIENT] = add(c, ENT_CLIENT, r->orig_h, r->ts_us, v);
	if (r->has_subject && msg) {
		ds[ENT_FP] = add(c, ENT_FP, r->fingerprint, r->ts_us, v);
		if (r->subj.gibberish)
			ds[ENT_SHAPE] = add(c, ENT_SHAPE, r->shape, r->ts_us, v);
		set_sample(c, ds[ENT_FP], r->msg->subject);
		set_sample(c, ds[ENT_SHAPE], r->msg->subject);
	}
	ds[ENT_DOMAIN] = add(c, ENT_DOMAIN, r->sender_domain, r->ts_us, v);
	char acct[COUNTERS_ID_MAX + 1];
	counters_entity_id(c, ENT_ACCOUNT, r->account, acct, sizeof acct);
	for (int k = 0; k < ENT_TYPE_COUNT; k++) {
		if (!ds[k])
			continue;
		for (unsigned i = 0; i < t->n_rcpt; i++) {
			if (!t->replies_seen || (t->rcpt_code[i] >= 200 && t->rcpt_code[i] < 300))
				add_member(c, ds[k], H_RCPT, t->rcpt[i]);
		}
		for (unsigned i = 0; i < nd; i++)
			add_member(c, ds[k], H_RDOM, domains[i]);
		if ((k == ENT_CLIENT || k == ENT_FP || k == ENT_SHAPE) && r->account[0])
			add_member(c, ds[k], H_ACCT, acct);
	}
	struct batch *b = c->cur;
	b->stats[S_MSGS] += (int64_t)v[F_MSGS];
	b->stats[S_RCPTS] += (int64_t)v[F_RCPTS];
	b->stats[S_RCPTS_REJ] += (int64_t)v[F_RCPTS_REJ];
	b->stats[S_BYTES] += (int64_t)v[F_BYTES];
}

void counters_auth(struct counters *c, uint64_t ts_us, const char *client, const char *user,
		   bool ok)
{
	uint64_t v[F_COUNT] = { 0 };
	v[ok ? F_AUTH_OK : F_AUTH_FAIL] = 1;
	count_event(c);
	struct delta *d = add(c, ENT_CLIENT, client, ts_us, v);
	if (user && *user) {
		char acct[COUNTERS_ID_MAX + 1];
		counters_entity_id(c, ENT_ACCOUNT, user, acct, sizeof acct);
		add_member(c, d, H_TRIED, acct);
		add(c, ENT_ACCOUNT, user, ts_us, v);
	}
	if (!ok)
		c->cur->stats[S_AUTH_FAIL]++;
}

void counters_session(struct counters *c, uint64_t ts_us, const char *client, bool tls)
{
	uint64_t v[F_COUNT] = { 0 };
	v[tls ? F_TLS_SESSIONS : F_SESSIONS] = 1;
	count_event(c);
	add(c, ENT_CLIENT, client, ts_us, v);
	c->cur->stats[tls ? S_TLS_SESSIONS : S_SESSIONS]++;
}

void counters_tls_bytes(struct counters *c, uint64_t ts_us, const char *client, uint64_t bytes)
{
	uint64_t v[F_COUNT] = { 0 };
	v[F_TLS_BYTES] = bytes;
	add(c, ENT_CLIENT, client, ts_us, v);
}

void counters_set_health(struct counters *c, const struct counters_health *h)
{
	c->health = *h;
	c->has_health = true;
}

/* --- alerts --------------------------------------------------------------------------------- */

static char *fmt_num(char *buf, size_t n, double v)
{
	if (v == floor(v) && fabs(v) < 1e15)
		snprintf(buf, n, "%.0f", v);
	else
		snprintf(buf, n, "%.3f", v);
	return buf;
}

bool counters_alert(struct counters *c, const struct counters_alert *a)
{
	char ts[32], ts_us[32], value[32], thr[32], base[32], first[32], before[32], cool[32];
	char maxlen[32];
	snprintf(ts, sizeof ts, "%.6f", a->ts);
	snprintf(ts_us, sizeof ts_us, "%" PRIu64,
		 a->ts_us ? a->ts_us : (uint64_t)llround(a->ts * 1e6));
	fmt_num(value, sizeof value, a->value);
	fmt_num(thr, sizeof thr, a->threshold);
	if (a->baseline >= 0)
		fmt_num(base, sizeof base, a->baseline);
	else
		base[0] = 0;
	snprintf(first, sizeof first, "%.6f", a->first_seen);
	snprintf(before, sizeof before, "%" PRIu64, a->msgs_before_alert);
	snprintf(cool, sizeof cool, "%" PRIu64, counters_cooldown_us(c->cfg.cooldown_s));
	snprintf(maxlen, sizeof maxlen, "%" PRIu64, c->cfg.stream_maxlen);
	const char *fv[] = {
		"ts", ts, "rule", a->rule, "severity", a->severity, "entity_type", a->entity_type,
		"entity", a->entity, "window", a->window, "value", value, "threshold", thr,
		"baseline", base, "first_seen", first, "msgs_before_alert", before,
		"sample_subject", a->sample_subject ? a->sample_subject : "",
		"client_ips", a->client_ips ? a->client_ips : "", "sensor", c->sensor,
		"extra", a->extra ? a->extra : "{}",
	};
	enum { NFV = sizeof fv / sizeof fv[0] };
	/* EVALSHA sha 3 cool stream stats cooldown_us value maxlen rule severity ts_us fv... */
	int argc = 4 + 3 + 6 + NFV;
	char cool_key[COUNTERS_ID_MAX * 2 + 128];
	snprintf(cool_key, sizeof cool_key, "%s{alerts}:cool:%s:%s:%s:%s:%s", c->prefix, a->rule,
		 a->measure ? a->measure : "value", a->window, a->entity_type, a->entity);
	char stream[96], stats[96];
	snprintf(stream, sizeof stream, "%salerts", c->prefix);
	snprintf(stats, sizeof stats, "%sstats", c->prefix);
	const char *args[4 + 3 + 6 + NFV];
	int i = 0;
	args[i++] = "EVALSHA";
	args[i++] = NULL; /* the sha, filled by the writer */
	args[i++] = "3";
	args[i++] = cool_key;
	args[i++] = stream;
	args[i++] = stats;
	args[i++] = cool;
	args[i++] = value;
	args[i++] = maxlen;
	args[i++] = a->rule;
	args[i++] = a->severity;
	args[i++] = ts_us;
	for (int k = 0; k < NFV; k++)
		args[i++] = fv[k];
	argc = i;
	size_t total = 0;
	for (int k = 0; k < argc; k++)
		total += (args[k] ? strlen(args[k]) : 0) + 1;
	struct alert_item *it = calloc(1, sizeof *it);
	char *mem = malloc(total);
	char **argv = calloc((size_t)argc, sizeof *argv);
	size_t *lens = calloc((size_t)argc, sizeof *lens);
	if (!it || !mem || !argv || !lens) {
		free(it); free(mem); free(argv); free(lens);
		return false;
	}
	char *p = mem;
	for (int k = 0; k < argc; k++) {
		const char *s = args[k] ? args[k] : "";
		size_t n = strlen(s);
		memcpy(p, s, n + 1);
		argv[k] = p;
		lens[k] = n;
		p += n + 1;
	}
	it->argc = argc;
	it->argv = argv;
	it->argvlen = lens;
	it->mem = mem;
	pthread_mutex_lock(&c->mu);
	bool ok = c->st.alerts_pending < COUNTERS_ALERTS_PENDING_MAX;
	if (ok) {
		if (c->a_tail)
			c->a_tail->next = it;
		else
			c->a_head = it;
		c->a_tail = it;
		c->st.alerts_pending++;
		pthread_cond_signal(&c->cv);
	} else {
		c->st.alerts_dropped++;
	}
	pthread_mutex_unlock(&c->mu);
	if (!ok) {
		free(mem); free(argv); free(lens); free(it);
	}
	return ok;
}

static void alert_free(struct alert_item *it)
{
	free(it->mem);
	free(it->argv);
	free(it->argvlen);
	free(it);
}

/* --- acknowledgements (capture thread) --------------------------------------------------- */

/* Pop the oldest delta of its entity (deltas are acknowledged in order). */
static void ent_pop(struct delta *d)
{
	struct ent *e = d->ent;
	if (e->pend_head == d) {
		e->pend_head = d->next_in_ent;
		if (!e->pend_head)
			e->pend_tail = NULL;
		e->npend--;
	}
	if (e->cur == d)
		e->cur = NULL;
}

/* Is bucket b still in its window at minute now_m? */
static bool bucket_live(const struct bucket *b, uint32_t now_m)
{
	if (b->res == 'm')
		return b->id + 10 > now_m && b->id <= now_m;
	return b->id + 12 > now_m / 5 && b->id <= now_m / 5;
}

/* A bucket Redis returned replaces the entity's copy of it; buckets that
 * slid out of both windows make room. */
static void put_bucket(struct ent *e, const struct bucket *nb, uint32_t now_m)
{
	unsigned j = 0;
	for (unsigned i = 0; i < e->nbuckets; i++) {
		struct bucket *b = &e->buckets[i];
		if ((b->res == nb->res && b->id == nb->id) || !bucket_live(b, now_m))
			continue;
		e->buckets[j++] = *b;
	}
	e->nbuckets = j;
	if (j < BUCKETS_MAX)
		e->buckets[e->nbuckets++] = *nb;
}

static void apply_result(struct ent *e, const struct delta *d)
{
	if (!d->has_result)
		return;
	if (!d->full_result) {
		for (unsigned i = 0; i < d->nbuckets; i++)
			put_bucket(e, &d->buckets[i], d->minute);
		return;
	}
	e->known = true;
	e->nbuckets = d->nbuckets < BUCKETS_MAX ? d->nbuckets : BUCKETS_MAX;
	memcpy(e->buckets, d->buckets, e->nbuckets * sizeof e->buckets[0]);
	memcpy(e->distinct, d->distinct, sizeof e->distinct);
	e->dist_minute = d->minute;
	if (d->has_base) {
		memcpy(e->base, d->base, sizeof e->base);
		e->hours = d->hours;
		e->base_learned = d->hours >= 24;
	}
}

static void batch_free(struct batch *b)
{
	free(b->mtab);
	arena_free(&b->arena);
	free(b);
}

static void take_done(struct counters *c)
{
	pthread_mutex_lock(&c->mu);
	struct batch *b = c->done_head;
	c->done_head = c->done_tail = NULL;
	atomic_store(&c->done_ready, false);
	pthread_mutex_unlock(&c->mu);
	while (b) {
		struct batch *next = b->next;
		for (struct delta *d = b->head; d; d = d->next_in_batch) {
			ent_pop(d);
			apply_result(d->ent, d);
		}
		batch_free(b);
		b = next;
	}
}

/* Over max_pending: drop the oldest batches not being sent (counted). */
static void enforce_bound(struct counters *c)
{
	for (;;) {
		pthread_mutex_lock(&c->mu);
		struct batch *victim = NULL;
		/* never a batch the writer is sending */
		if (c->pending_events > c->cfg.max_pending && c->q_head && !c->inflight_until) {
			victim = c->q_head;
			c->q_head = victim->next;
			if (!c->q_head)
				c->q_tail = NULL;
			c->pending_events -= victim->events;
			c->st.events_dropped += victim->events;
			c->st.batches_dropped++;
		}
		pthread_mutex_unlock(&c->mu);
		if (!victim)
			return;
		for (struct delta *d = victim->head; d; d = d->next_in_batch)
			ent_pop(d);
		batch_free(victim);
	}
}

/* Hand the current batch to the writer. last: at exit, when no batch comes
 * after this one. */
static void cut(struct counters *c, uint64_t now_us, bool last)
{
	struct batch *b = c->cur;
	b->now_us = now_us;
	if (c->has_health) {
		b->has_health = true;
		b->health = c->health;
	}
	/* Health alone waits while Redis is behind: the next batch carries the
	 * newest. Not at exit (there is no next one: the last health was lost
	 * while the batch before was in flight), nor with events (their
	 * rw:stats counts need no delta: an entity refused leaves none). */
	pthread_mutex_lock(&c->mu);
	bool idle = !last && !b->ndeltas && !b->events && c->q_head;
	pthread_mutex_unlock(&c->mu);
	if (idle)
		return;
	struct batch *nb = batch_new(c);
	if (!nb)
		return; /* keep accumulating into the current one */
	c->cur = nb;
	free(b->mtab); /* only add_member needs it */
	b->mtab = NULL;
	b->mmask = b->mcount = 0;
	pthread_mutex_lock(&c->mu);
	b->pending_snapshot = c->pending_events + b->events;
	if (c->q_tail)
		c->q_tail->next = b;
	else
		c->q_head = b;
	c->q_tail = b;
	c->pending_events += b->events;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	enforce_bound(c);
}

/* Wait until every batch cut so far is acknowledged, or a round has failed
 * since (Redis away, or refusing with error replies over a sound
 * connection: the replay goes on with local deltas). */
static void wait_acknowledged(struct counters *c)
{
	pthread_mutex_lock(&c->mu);
	uint64_t start = c->rounds;
	while (c->q_head && !c->stopping) {
		pthread_cond_wait(&c->round_done, &c->mu);
		if (c->rounds > start && c->st.failing)
			break; /* a round failed */
	}
	pthread_mutex_unlock(&c->mu);
	take_done(c);
}

bool counters_cut_due(const struct counters *c, uint64_t now_us)
{
	return !c->next_cut_us || now_us >= c->next_cut_us;
}

void counters_tick(struct counters *c, uint64_t now_us)
{
	if (now_us > c->last_now_us)
		c->last_now_us = now_us;
	if (!c->next_cut_us)
		c->next_cut_us = now_us + c->tick_us;
	if (now_us >= c->next_cut_us) {
		cut(c, now_us, false);
		c->next_cut_us = now_us + c->tick_us;
		uint64_t hour = now_us / 3600000000u;
		if (c->cfg.sync_hours && hour != c->last_cut_hour) {
			if (c->last_cut_hour)
				wait_acknowledged(c);
			c->last_cut_hour = hour;
		}
	}
	if (atomic_load(&c->done_ready))
		take_done(c);
}

/* --- views ------------------------------------------------------------------------------------ */

void counters_view(struct counters *c, enum entity_type t, const char *id, uint64_t now_us,
		   struct counters_view *out)
{
	memset(out, 0, sizeof *out);
	if (atomic_load(&c->done_ready))
		take_done(c);
	struct ent *e = id && *id ? ent_get(c, t, id, false) : NULL;
	if (!e)
		return;
	uint32_t now_m = (uint32_t)(now_us / 60000000u);
	uint32_t now_f = now_m / 5;
	out->known = e->known;
	for (unsigned i = 0; i < e->nbuckets; i++) {
		const struct bucket *b = &e->buckets[i];
		int w = b->res == 'm' ? W_10M : W_1H;
		uint32_t now_b = w == W_10M ? now_m : now_f;
		uint32_t span = w == W_10M ? 10 : 12;
		if (b->id + span > now_b && b->id <= now_b)
			for (int f = 0; f < F_COUNT; f++)
				out->v[w][f] += b->v[f];
	}
	for (const struct delta *d = e->pend_head; d; d = d->next_in_ent) {
		if (d->minute + 10 > now_m && d->minute <= now_m)
			for (int f = 0; f < F_COUNT; f++)
				out->v[W_10M][f] += d->v[f];
		if (d->minute / 5 + 12 > now_f && d->minute / 5 <= now_f)
			for (int f = 0; f < F_COUNT; f++)
				out->v[W_1H][f] += d->v[f];
		/* distinct: an upper bound from the members not yet counted */
		for (int k = 0; k < H_COUNT; k++) {
			out->distinct[W_10M][k] += d->nmem[k];
			out->distinct[W_1H][k] += d->nmem[k];
		}
	}
	/* Redis' distinct counts are window-level: trust them while fresh. */
	if (e->known && e->dist_minute + REFRESH_MIN >= now_m)
		for (int w = 0; w < W_COUNT; w++)
			for (int k = 0; k < H_COUNT; k++)
				out->distinct[w][k] += e->distinct[w][k];
	out->base_learned = e->base_learned;
	out->base_msgs = e->base[0];
	out->base_rcpts = e->base[1];
	out->base_tls_sessions = e->base[2];
	for (int i = 0; i < 10; i++) {
		const struct first_slot *s = &e->first[i];
		if (s->first_us && s->minute + 10 > now_m && s->minute <= now_m &&
		    (!out->first_seen_us || s->first_us < out->first_seen_us))
			out->first_seen_us = s->first_us;
	}
}

/* --- the writer thread ---------------------------------------------------------------------- */

struct cmdbuf {
	int argc, cap;
	const char **argv;
	size_t *len;
	struct arena strings;  /* numbers formatted for this pipeline */
	int ncmds;
	/* per command: what its reply means */
	struct reply_slot { uint8_t kind; struct delta *d; struct alert_item *a; } *slots;
	int nslots, slotcap;
	/* The call before each one of the same idempotency key in this round
	 * (an entity's E:seq, rw:stats, the top sets), sent along so that a
	 * script refuses to apply a call whose predecessor Redis refused
	 * (flush.lua, "RWGAP"). Entities: open addressing on the pointer. */
	struct prev_call { const struct ent *e; uint64_t seq; uint32_t sub; } *prev;
	uint32_t prev_mask;
	uint64_t stats_prev, top_prev;   /* 0: none yet in this round */
};

enum { R_FLUSH, R_STATS, R_TOP, R_HEALTH, R_ALERT };

static void cb_reset(struct cmdbuf *b)
{
	b->argc = 0;
	b->ncmds = 0;
	b->nslots = 0;
	b->stats_prev = b->top_prev = 0;
	if (b->prev)
		memset(b->prev, 0, ((size_t)b->prev_mask + 1) * sizeof *b->prev);
	arena_free(&b->strings);
}

/* Room to remember the last call of n entities in this round. */
static bool prev_reserve(struct cmdbuf *b, size_t n)
{
	size_t cap = 64;
	while (cap < 2 * n)
		cap *= 2;
	if (b->prev && cap <= (size_t)b->prev_mask + 1)
		return true;
	struct prev_call *p = calloc(cap, sizeof *p);
	if (!p)
		return false;
	free(b->prev);
	b->prev = p;
	b->prev_mask = (uint32_t)(cap - 1);
	return true;
}

/* The slot of entity e in this round's table (e NULL in it: none yet). */
static struct prev_call *prev_slot(struct cmdbuf *b, const struct ent *e)
{
	uint32_t i = (uint32_t)(((uintptr_t)e >> 4) * 0x9e3779b97f4a7c15ull >> 32) & b->prev_mask;
	while (b->prev[i].e && b->prev[i].e != e)
		i = (i + 1) & b->prev_mask;
	return &b->prev[i];
}

static bool cb_arg(struct cmdbuf *b, const char *s, size_t n)
{
	if (b->argc == b->cap) {
		int cap = b->cap ? b->cap * 2 : 256;
		const char **a = realloc(b->argv, (size_t)cap * sizeof *a);
		if (!a)
			return false;
		b->argv = a;
		size_t *l = realloc(b->len, (size_t)cap * sizeof *l);
		if (!l)
			return false;
		b->len = l;
		b->cap = cap;
	}
	b->argv[b->argc] = s;
	b->len[b->argc] = n;
	b->argc++;
	return true;
}

static void cb_str(struct cmdbuf *b, const char *s)
{
	cb_arg(b, s, strlen(s));
}

__attribute__((format(printf, 2, 3)))
/* One argument, formatted whole: a key of the prefix (up to 63 bytes) and
 * the sensor's name (up to 127 escaped) does not fit the usual 128 bytes;
 * it was once cut at 64 and followed by stack bytes. */
static void cb_fmt(struct cmdbuf *b, const char *fmt, ...)
{
	char tmp[128], *big = NULL;
	va_list ap, again;
	va_start(ap, fmt);
	va_copy(again, ap);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	const char *src = tmp;
	if (n >= (int)sizeof tmp) {
		big = malloc((size_t)n + 1); /* per batch, for a long name */
		if (big)
			vsnprintf(big, (size_t)n + 1, fmt, again);
		src = big;
	}
	va_end(again);
	char *s = n >= 0 && src ? arena_strdup(&b->strings, src, (size_t)n) : NULL;
	free(big);
	if (s)
		cb_arg(b, s, (size_t)n);
}

static void cb_slot(struct cmdbuf *b, uint8_t kind, struct delta *d, struct alert_item *a)
{
	if (b->nslots == b->slotcap) {
		int cap = b->slotcap ? b->slotcap * 2 : 64;
		void *s = realloc(b->slots, (size_t)cap * sizeof *b->slots);
		if (!s)
			return;
		b->slots = s;
		b->slotcap = cap;
	}
	b->slots[b->nslots++] = (struct reply_slot){ kind, d, a };
}

/* Append the command in b->argv[start..] to the connection. */
static int cb_append(struct counters *c, struct cmdbuf *b, int start)
{
	b->ncmds++;
	return redisAppendCommandArgv(c->rc, b->argc - start, b->argv + start, b->len + start);
}

static void put_batch(struct counters *c, struct cmdbuf *b, struct batch *bt)
{
	double now = (double)bt->now_us / 1e6;
	/* one flush.lua call per (entity, minute) */
	for (struct delta *d = bt->head; d; d = d->next_in_batch) {
		int start = b->argc;
		cb_str(b, "EVALSHA");
		cb_str(b, c->sha[LUA_FLUSH]);
		cb_str(b, "1");
		cb_str(b, d->ent->key);
		cb_str(b, c->sensor);
		cb_str(b, c->run);
		struct prev_call *pc = b->prev ? prev_slot(b, d->ent) : NULL;
		if (pc && pc->e)
			cb_fmt(b, "%" PRIu64 ":%" PRIu32 ":%" PRIu64 ":%" PRIu32, bt->seq, d->sub,
			       pc->seq, pc->sub);
		else
			cb_fmt(b, "%" PRIu64 ":%" PRIu32, bt->seq, d->sub);
		if (pc)
			*pc = (struct prev_call){ d->ent, bt->seq, d->sub };
		cb_fmt(b, "%.6f", now);
		cb_fmt(b, "%u", d->minute);
		if (d->mode)
			cb_fmt(b, "%u:%s", (unsigned)d->mode, dist_kinds[d->ent->type]);
		else
			cb_str(b, "0");
		cb_str(b, d->sample && d->mode ? d->sample : ""); /* once a minute is plenty */
		int nf_at = b->argc;
		cb_str(b, "0");
		int nf = 0;
		for (int f = 0; f < F_COUNT; f++) {
			if (!d->v[f])
				continue;
			cb_str(b, field_names[f]);
			cb_fmt(b, "%" PRIu64, d->v[f]);
			nf++;
		}
		char *nfs = arena_alloc(&b->strings, 12);
		snprintf(nfs, 12, "%d", nf);
		b->argv[nf_at] = nfs;
		b->len[nf_at] = strlen(nfs);
		int nk = 0;
		int nk_at = b->argc;
		cb_str(b, "0");
		for (int k = 0; k < H_COUNT; k++) {
			if (!d->nmem[k])
				continue;
			nk++;
			cb_str(b, hll_names[k]);
			cb_fmt(b, "%u", d->nmem[k]);
			for (const struct member *m = d->members; m; m = m->next)
				if (m->kind == k)
					cb_arg(b, m->s, m->len);
		}
		char *nks = arena_alloc(&b->strings, 12);
		snprintf(nks, 12, "%d", nk);
		b->argv[nk_at] = nks;
		b->len[nk_at] = strlen(nks);
		cb_append(c, b, start);
		cb_slot(b, R_FLUSH, d, NULL);
	}
	/* rw:stats */
	int start = b->argc;
	cb_str(b, "EVALSHA");
	cb_str(b, c->sha[LUA_STATS]);
	cb_str(b, "1");
	cb_fmt(b, "%sstats", c->prefix);
	cb_str(b, c->sensor);
	cb_str(b, c->run);
	if (b->stats_prev)
		cb_fmt(b, "%" PRIu64 ":%" PRIu64, bt->seq, b->stats_prev);
	else
		cb_fmt(b, "%" PRIu64, bt->seq);
	bool any = false;
	for (int s = 0; s < S_COUNT; s++) {
		if (!bt->stats[s])
			continue;
		cb_str(b, stat_names[s]);
		cb_fmt(b, "%" PRId64, bt->stats[s]);
		any = true;
	}
	if (any) {
		cb_append(c, b, start);
		cb_slot(b, R_STATS, NULL, NULL);
		b->stats_prev = bt->seq;
	} else {
		b->argc = start;
	}
	/* top-N: accounts, fingerprints, clients by messages per minute */
	start = b->argc;
	cb_str(b, "EVALSHA");
	cb_str(b, c->sha[LUA_TOP]);
	cb_str(b, "1");
	cb_fmt(b, "%s{top}", c->prefix);
	cb_str(b, c->sensor);
	cb_str(b, c->run);
	if (b->top_prev)
		cb_fmt(b, "%" PRIu64 ":%" PRIu64, bt->seq, b->top_prev);
	else
		cb_fmt(b, "%" PRIu64, bt->seq);
	cb_fmt(b, "%.6f", now);
	any = false;
	static const enum entity_type top_types[] = { ENT_ACCOUNT, ENT_FP, ENT_CLIENT };
	for (size_t k = 0; k < 3; k++) {
		for (struct delta *d = bt->head; d; d = d->next_in_batch) {
			if (d->ent->type != top_types[k] || !d->v[F_MSGS])
				continue;
			/* the member is the ID inside "P{tag:ID}" */
			const char *id = d->ent->key + d->ent->id_off;
			size_t idlen = d->ent->id_len;
			cb_str(b, type_tags[top_types[k]]);
			cb_fmt(b, "%u", d->minute);
			cb_str(b, "1");
			cb_arg(b, id, idlen);
			cb_fmt(b, "%" PRIu64, d->v[F_MSGS]);
			any = true;
		}
	}
	if (any) {
		cb_append(c, b, start);
		cb_slot(b, R_TOP, NULL, NULL);
		b->top_prev = bt->seq;
	} else {
		b->argc = start;
	}
	/* sensor health */
	if (bt->has_health) {
		struct counters_health *h = &bt->health;
		start = b->argc;
		cb_str(b, "EVALSHA");
		cb_str(b, c->sha[LUA_HEALTH]);
		cb_str(b, "2");
		cb_fmt(b, "%ssensor:%s", c->prefix, c->sensor);
		cb_fmt(b, "%ssensors", c->prefix);
		double ttl = c->cfg.flush_interval_s * 10;
		cb_fmt(b, "%.0f", ttl < 60 ? 60 : ttl);
		cb_str(b, c->sensor);
		struct timespec rt;
		clock_gettime(CLOCK_REALTIME, &rt);
		cb_fmt(b, "%lld", (long long)rt.tv_sec);
		cb_str(b, "version"); cb_str(b, RW_VERSION);
		cb_str(b, "packets_received"); cb_fmt(b, "%" PRIu64, h->packets_received);
		cb_str(b, "packets_dropped"); cb_fmt(b, "%" PRIu64, h->packets_dropped);
		cb_str(b, "packets_if_dropped"); cb_fmt(b, "%" PRIu64, h->packets_if_dropped);
		cb_str(b, "flows"); cb_fmt(b, "%" PRIu64, h->flows);
		cb_str(b, "flows_evicted"); cb_fmt(b, "%" PRIu64, h->flows_evicted);
		cb_str(b, "records"); cb_fmt(b, "%" PRIu64, h->records);
		cb_str(b, "sessions"); cb_fmt(b, "%" PRIu64, h->sessions);
		cb_str(b, "sessions_over"); cb_fmt(b, "%" PRIu64, h->sessions_over);
		cb_str(b, "bad_checksums"); cb_fmt(b, "%" PRIu64, h->bad_checksums);
		if (h->checksums) {
			cb_str(b, "checksums"); cb_str(b, h->checksums);
		}
		if (h->rss_bytes) {
			cb_str(b, "rss_bytes"); cb_fmt(b, "%" PRIu64, h->rss_bytes);
		}
		if (h->rss_peak_bytes) {
			cb_str(b, "rss_peak_bytes"); cb_fmt(b, "%" PRIu64, h->rss_peak_bytes);
		}
		cb_str(b, "pending"); cb_fmt(b, "%" PRIu64, bt->pending_snapshot);
		cb_str(b, "pending_dropped"); cb_fmt(b, "%" PRIu64, c->st.events_dropped);
		cb_str(b, "alerts_pending"); cb_fmt(b, "%" PRIu64, c->st.alerts_pending);
		cb_str(b, "redis_reconnects"); cb_fmt(b, "%" PRIu64, c->st.reconnects);
		cb_str(b, "last_flush"); cb_fmt(b, "%lld", (long long)rt.tv_sec);
		cb_str(b, "flush_latency_ms"); cb_fmt(b, "%.3f", c->st.last_flush_latency_ms);
		cb_append(c, b, start);
		cb_slot(b, R_HEALTH, NULL, NULL);
	}
}

static uint64_t reply_num(const redisReply *r)
{
	if (!r)
		return 0;
	if (r->type == REDIS_REPLY_INTEGER)
		return r->integer > 0 ? (uint64_t)r->integer : 0;
	if (r->type == REDIS_REPLY_STRING)
		return strtoull(r->str, NULL, 10);
	return 0;
}

static int field_index(const char *name)
{
	for (int f = 0; f < F_COUNT; f++)
		if (!strcmp(field_names[f], name))
			return f;
	return -1;
}

/* flush.lua's answer: {applied, buckets10, buckets60, distinct, base}, where
 * buckets are flat {bucket, n, field, value, ...}. */
static void parse_flush(struct delta *d, const redisReply *r)
{
	struct batch *bt = d->batch;
	if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 5)
		return;
	unsigned nb = 0;
	struct bucket tmp[BUCKETS_MAX];
	for (int w = 0; w < 2; w++) {
		const redisReply *a = r->element[1 + w];
		if (a->type != REDIS_REPLY_ARRAY)
			continue;
		size_t i = 0;
		while (i + 1 < a->elements && nb < BUCKETS_MAX) {
			struct bucket *b = &tmp[nb++];
			memset(b, 0, sizeof *b);
			b->id = (uint32_t)reply_num(a->element[i]);
			b->res = w == 0 ? 'm' : 'f';
			size_t n = reply_num(a->element[i + 1]);
			i += 2;
			for (size_t k = 0; k < n && i + 1 < a->elements; k++, i += 2) {
				const redisReply *fn = a->element[i];
				int f = fn->type == REDIS_REPLY_STRING ? field_index(fn->str) : -1;
				if (f >= 0)
					b->v[f] = reply_num(a->element[i + 1]);
			}
		}
	}
	d->full_result = d->mode != 0;
	d->buckets = arena_alloc(&bt->arena, nb * sizeof *d->buckets + 1);
	if (d->buckets) {
		memcpy(d->buckets, tmp, nb * sizeof *tmp);
		d->nbuckets = nb;
	}
	const redisReply *dist = r->element[3];
	if (dist->type == REDIS_REPLY_ARRAY)
		for (size_t i = 0; i + 2 < dist->elements; i += 3)
			for (int k = 0; k < H_COUNT; k++)
				if (dist->element[i]->type == REDIS_REPLY_STRING &&
				    !strcmp(dist->element[i]->str, hll_names[k])) {
					d->distinct[W_10M][k] = reply_num(dist->element[i + 1]);
					d->distinct[W_1H][k] = reply_num(dist->element[i + 2]);
				}
	const redisReply *base = r->element[4];
	if (base->type == REDIS_REPLY_ARRAY && base->elements >= 4) {
		for (int k = 0; k < 3; k++)
			d->base[k] = base->element[k]->type == REDIS_REPLY_STRING
					     ? strtod(base->element[k]->str, NULL) : 0;
		d->hours = (uint32_t)reply_num(base->element[3]);
		d->has_base = true;
	}
	d->has_result = true;
}

static void set_error(struct counters *c, const char *msg)
{
	pthread_mutex_lock(&c->mu);
	snprintf(c->st.last_error, sizeof c->st.last_error, "%s", msg);
	pthread_mutex_unlock(&c->mu);
}

static void disconnect(struct counters *c)
{
	if (c->rc) {
		redisFree(c->rc);
		c->rc = NULL;
	}
	pthread_mutex_lock(&c->mu);
	c->st.connected = false;
	pthread_mutex_unlock(&c->mu);
}

static bool load_scripts(struct counters *c)
{
	for (int i = 0; i < LUA_COUNT; i++) {
		redisReply *r = redisCommand(c->rc, "SCRIPT LOAD %s", counters_lua[i].source);
		if (!r || r->type != REDIS_REPLY_STRING) {
			char msg[256];
			snprintf(msg, sizeof msg, "SCRIPT LOAD %s: %s", counters_lua[i].name,
				 r && r->type == REDIS_REPLY_ERROR ? r->str : c->rc->errstr);
			set_error(c, msg);
			if (r)
				freeReplyObject(r);
			return false;
		}
		snprintf(c->sha[i], sizeof c->sha[i], "%s", r->str);
		freeReplyObject(r);
	}
	return true;
}

static bool connect_redis(struct counters *c)
{
	char err[512];
	/* A refused login (-EACCES) is retried like an unreachable Redis: the
	 * capture goes on and the counts wait in memory until the password or
	 * the ACL is put right (README, "Redis down means nothing lost"). */
	if (redis_conn_open(&c->target, c->cfg.timeout_ms, "relaywatch-sensor", &c->rc, err,
			    sizeof err) < 0) {
		set_error(c, err);
		pthread_mutex_lock(&c->mu);
		c->st.connect_failures++;
		pthread_mutex_unlock(&c->mu);
		return false;
	}
	if (!load_scripts(c)) {
		disconnect(c);
		return false;
	}
	pthread_mutex_lock(&c->mu);
	c->st.connected = true;
	c->st.reconnects++;
	pthread_mutex_unlock(&c->mu);
	return true;
}

/* Send batches [first..last] and the alerts taken. Returns 0 when every
 * reply came back; -1 on a connection error (all to be resent); -2 when
 * scripts must be reloaded (NOSCRIPT). */
static int send_round(struct counters *c, struct cmdbuf *b, struct batch *first,
		      struct batch *last, struct alert_item *alerts)
{
	cb_reset(b);
	size_t ndeltas = 0;
	for (struct batch *bt = first; bt; bt = bt->next) {
		ndeltas += bt->ndeltas;
		if (bt == last)
			break;
	}
	/* without the table (no memory) calls go without their predecessor,
	 * as before: a refused call may then be lost, nothing worse */
	if (!prev_reserve(b, ndeltas)) {
		free(b->prev);
		b->prev = NULL;
	}
	for (struct batch *bt = first; bt; bt = bt->next) {
		put_batch(c, b, bt);
		if (bt == last)
			break;
	}
	for (struct alert_item *a = alerts; a; a = a->next) {
		if (a->taken)
			continue; /* in an earlier try of this round (NOSCRIPT) */
		a->argv[1] = c->sha[LUA_ALERT];
		a->argvlen[1] = strlen(c->sha[LUA_ALERT]);
		b->ncmds++;
		redisAppendCommandArgv(c->rc, a->argc, (const char **)a->argv, a->argvlen);
		cb_slot(b, R_ALERT, NULL, a);
	}
	int result = 0;
	bool told = false;
	for (int i = 0; i < b->nslots; i++) {
		redisReply *r = NULL;
		if (redisGetReply(c->rc, (void **)&r) != REDIS_OK) {
			set_error(c, c->rc->errstr);
			return -1;
		}
		struct reply_slot *s = &b->slots[i];
		if (r->type == REDIS_REPLY_ERROR) {
			if (!strncmp(r->str, "NOSCRIPT", 8)) {
				result = -2;
			} else {
				/* Not taken (OOM, READONLY, BUSY, NOPERM...): the round
				 * is not acknowledged but sent again after a backoff; what
				 * it did apply is skipped then (every script is
				 * idempotent per batch, alerts deduplicated), and what
				 * came after a refused call of the same key was not
				 * applied (RWGAP: a consequence, not the reason told). */
				if (!told && strncmp(r->str, "RWGAP", 5)) {
					set_error(c, r->str);
					told = true;
				}
				if (result == 0)
					result = -3;
			}
		} else if (s->kind == R_FLUSH) {
			parse_flush(s->d, r);
		} else if (s->kind == R_ALERT) {
			s->a->taken = true;
			pthread_mutex_lock(&c->mu);
			if (r->type == REDIS_REPLY_INTEGER && r->integer == 0)
				c->st.alerts_duplicate++;
			else
				c->st.alerts_sent++;
			pthread_mutex_unlock(&c->mu);
		}
		freeReplyObject(r);
	}
	return result;
}

/* Wait up to ms, or until a stop is requested. The batches cut meanwhile
 * signal the same condition: they do not cut a backoff short (that made a
 * sensor retry a Redis that is away at every flush). */
static void nap(struct counters *c, unsigned ms)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&c->mu);
	bool stopping = c->stopping;
	while (c->stopping == stopping &&
	       pthread_cond_timedwait(&c->cv, &c->mu, &until) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&c->mu);
}

/* Batches [first..last] were acknowledged: hand them back, in order. */
static void acknowledged(struct counters *c, struct batch *first, struct batch *last,
			 struct alert_item *alerts)
{
	if (first) {
		struct batch *stop = last->next;
		for (struct batch *bt = first; bt != stop; bt = bt->next) {
			c->pending_events -= bt->events;
			c->st.batches_sent++;
		}
		c->q_head = stop;
		if (!stop)
			c->q_tail = NULL;
		last->next = NULL;
		if (c->done_tail)
			c->done_tail->next = first;
		else
			c->done_head = first;
		c->done_tail = last;
		atomic_store(&c->done_ready, true);
	}
	while (alerts) {
		struct alert_item *n = alerts->next;
		c->st.alerts_pending--;
		alert_free(alerts);
		alerts = n;
	}
}

/* A round failed: the alerts Redis did not take go back in front of any
 * that came since; the ones it took are done (sent again, alert.lua would
 * add them to the stream a second time when outside the cooldown: with a
 * cooldown of 0, or the last alert of its key). Under mu. */
static void requeue_alerts(struct counters *c, struct alert_item *alerts)
{
	struct alert_item *head = NULL, *last = NULL;
	while (alerts) {
		struct alert_item *n = alerts->next;
		if (alerts->taken) {
			c->st.alerts_pending--;
			alert_free(alerts);
		} else {
			if (last)
				last->next = alerts;
			else
				head = alerts;
			last = alerts;
		}
		alerts = n;
	}
	if (!head)
		return;
	last->next = c->a_head;
	if (!c->a_head)
		c->a_tail = last;
	c->a_head = head;
}

static void *writer_main(void *arg)
{
	struct counters *c = arg;
	struct cmdbuf b = { 0 };
	unsigned backoff_ms = 0;
	unsigned int seed = (unsigned int)(uintptr_t)c ^ (unsigned int)time(NULL);
	for (;;) {
		pthread_mutex_lock(&c->mu);
		while (!c->stopping && !c->q_head && !c->a_head)
			pthread_cond_wait(&c->cv, &c->mu);
		if (c->stopping && ((!c->q_head && !c->a_head) || mono_s() > c->stop_deadline)) {
			pthread_mutex_unlock(&c->mu);
			break;
		}
		/* up to MAX_BATCHES_PER_TRIP batches and every alert waiting */
		struct batch *first = c->q_head, *last = first;
		for (int n = 1; last && last->next && n < MAX_BATCHES_PER_TRIP; n++)
			last = last->next;
		c->inflight_until = last;
		struct alert_item *alerts = c->a_head;
		c->a_head = c->a_tail = NULL;
		pthread_mutex_unlock(&c->mu);

		int r = -1;
		double t0 = mono_s();
		if (c->rc || connect_redis(c)) {
			r = send_round(c, &b, first, last, alerts);
			if (r == -2 && load_scripts(c)) /* Redis restarted or SCRIPT FLUSH */
				r = send_round(c, &b, first, last, alerts);
		}
		pthread_mutex_lock(&c->mu);
		c->inflight_until = NULL;
		c->rounds++;
		pthread_cond_broadcast(&c->round_done);
		c->st.commands_sent += (uint64_t)b.ncmds;
		b.ncmds = 0;
		if (r == 0) {
			c->st.failing = false;
			c->st.round_trips++;
			c->st.last_flush_latency_ms = (mono_s() - t0) * 1000;
			acknowledged(c, first, last, alerts);
			pthread_mutex_unlock(&c->mu);
			backoff_ms = 0;
			continue;
		}
		requeue_alerts(c, alerts);
		c->st.failing = true;
		c->st.rounds_failed++;
		bool stopping = c->stopping;
		double left = c->stop_deadline - mono_s();
		pthread_mutex_unlock(&c->mu);
		if (r != -3)
			disconnect(c); /* an error reply came over a sound connection */
		if (stopping && left <= 0)
			break;
		/* exponential backoff with jitter (between half and all of it), so
		 * that sensors restarted together do not reconnect together */
		backoff_ms = backoff_ms ? backoff_ms * 2 : BACKOFF_MIN_MS;
		if (backoff_ms > BACKOFF_MAX_MS)
			backoff_ms = BACKOFF_MAX_MS;
		unsigned wait_ms = backoff_ms / 2 + (unsigned)rand_r(&seed) % (backoff_ms / 2 + 1);
		if (stopping && wait_ms > left * 1000)
			wait_ms = (unsigned)(left * 1000);
		nap(c, wait_ms);
	}
	cb_reset(&b);
	free(b.argv);
	free(b.len);
	free(b.slots);
	free(b.prev);
	disconnect(c);
	return NULL;
}

/* --- lifecycle ------------------------------------------------------------------------------ */

static int read_key(struct counters *c, const char *path, char *err, size_t errsz)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return -errno;
	}
	/* 16 bytes to 4 KB; a longer file is refused rather than read in part:
	 * two keys that differ only past the part read would give the same
	 * pseudonyms, and nothing would say so. */
	uint8_t buf[COUNTERS_KEY_FILE_MAX + 1];
	size_t n = fread(buf, 1, sizeof buf, f);
	fclose(f);
	if (n < 16 || n > COUNTERS_KEY_FILE_MAX) {
		memset(buf, 0, sizeof buf);
		snprintf(err, errsz, "%s: a pseudonymisation key needs 16 to %d bytes "
			 "(head -c 32 /dev/urandom > FILE makes one)", path, COUNTERS_KEY_FILE_MAX);
		return -EINVAL;
	}
	/* Any length of key file: condense it into SipHash's 128-bit key. */
	uint8_t zero[16] = { 0 };
	uint64_t a = siphash24(zero, buf, n);
	zero[0] = 1;
	uint64_t b = siphash24(zero, buf, n);
	memcpy(c->pseudo_key, &a, 8);
	memcpy(c->pseudo_key + 8, &b, 8);
	memset(buf, 0, sizeof buf);
	return 0;
}

struct counters *counters_create(const struct counters_config *cfg, char *err, size_t errsz)
{
	struct counters *c = calloc(1, sizeof *c);
	if (!c) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	c->cfg = *cfg;
	if (!c->cfg.timeout_ms)
		c->cfg.timeout_ms = 1000;
	if (!c->cfg.max_entities)
		c->cfg.max_entities = COUNTERS_ENTITIES_DEFAULT;
	if (c->cfg.flush_interval_s <= 0)
		c->cfg.flush_interval_s = 1;
	const char *prefix = cfg->prefix ? cfg->prefix : "rw:";
	escape_id(cfg->sensor_name ? cfg->sensor_name : "sensor", c->sensor, sizeof c->sensor);
	uint64_t rnd;
	if (getrandom(&rnd, sizeof rnd, 0) != sizeof rnd)
		rnd = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32;
	snprintf(c->run, sizeof c->run, "%016" PRIx64, rnd);
	c->hash_seed = rnd * 0x9e3779b97f4a7c15ull;
	c->tick_us = (uint64_t)(c->cfg.flush_interval_s * 1e6);
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	pthread_cond_init(&c->round_done, NULL);

	int why = EIO;  /* errno at a failure: EINVAL for a configuration error */
	if (!*prefix || strlen(prefix) > COUNTERS_PREFIX_MAX) {
		snprintf(err, errsz, "the key prefix must have 1 to %d bytes", COUNTERS_PREFIX_MAX);
		why = EINVAL;
		goto out_free;
	}
	snprintf(c->prefix, sizeof c->prefix, "%s", prefix);
	if (cfg->pseudo_key_file) {
		if (read_key(c, cfg->pseudo_key_file, err, errsz) < 0) {
			why = EINVAL;
			goto out_free;
		}
		c->pseudonymize = true;
	}
	uint32_t nb = 1;
	while (nb < c->cfg.max_entities)
		nb <<= 1;
	c->table = calloc(nb, sizeof *c->table);
	c->table_mask = nb - 1;
	c->cur = batch_new(c);
	if (!c->table || !c->cur) {
		snprintf(err, errsz, "out of memory");
		goto out_free;
	}
	if (!strcmp(cfg->url, "embedded")) {
		c->embedded_wanted = true; /* its socket is known once it runs */
	} else {
		if (redis_target_parse(cfg->url, &c->target, err, errsz) < 0 ||
		    redis_target_load_password(&c->target, cfg->password_file, err, errsz) < 0) {
			why = EINVAL;
			goto out_free;
		}
		redis_target_describe(&c->target, c->where, sizeof c->where);
	}
	return c;
out_free:
	counters_destroy(c, 0, NULL);
	errno = why;
	return NULL;
}

int counters_start(struct counters *c, char *err, size_t errsz)
{
	if (c->embedded_wanted) {
		c->embedded = redis_embedded_start(err, errsz);
		if (!c->embedded)
			return -EIO;
		char url[256];
		snprintf(url, sizeof url, "unix://%s", redis_embedded_socket(c->embedded));
		if (redis_target_parse(url, &c->target, err, errsz) < 0)
			return -EIO;
		redis_target_describe(&c->target, c->where, sizeof c->where);
	}
	if (pthread_create(&c->writer, NULL, writer_main, c) != 0) {
		snprintf(err, errsz, "cannot start the Redis writer thread");
		return -EIO;
	}
	c->writer_started = true;
	return 0;
}

uint64_t counters_destroy(struct counters *c, double deadline_s, struct counters_stats *final)
{
	if (final)
		memset(final, 0, sizeof *final);
	if (!c)
		return 0;
	if (c->writer_started) {
		take_done(c);
		if (c->cur && (c->cur->events || c->cur->ndeltas || c->has_health))
			cut(c, c->last_now_us, true);
		pthread_mutex_lock(&c->mu);
		c->stopping = true;
		c->stop_deadline = mono_s() + deadline_s;
		pthread_cond_broadcast(&c->cv);
		pthread_mutex_unlock(&c->mu);
		pthread_join(c->writer, NULL);
		take_done(c);
	}
	if (final)
		counters_get_stats(c, final);
	uint64_t lost = c->pending_events;
	for (struct batch *b = c->q_head; b;) {
		struct batch *n = b->next;
		batch_free(b);
		b = n;
	}
	for (struct alert_item *a = c->a_head; a;) {
		struct alert_item *n = a->next;
		lost++;
		alert_free(a);
		a = n;
	}
	if (c->cur)
		batch_free(c->cur);
	if (c->table) {
		for (uint32_t i = 0; i <= c->table_mask; i++) {
			struct ent *e = c->table[i];
			while (e) {
				struct ent *n = e->hnext;
				free(e);
				e = n;
			}
		}
		free(c->table);
	}
	redis_embedded_stop(c->embedded);
	redis_target_wipe(&c->target);
	memset(c->pseudo_key, 0, sizeof c->pseudo_key);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	pthread_cond_destroy(&c->round_done);
	free(c);
	return lost;
}

const char *counters_where(const struct counters *c)
{
	return c->where;
}

void counters_get_stats(struct counters *c, struct counters_stats *out)
{
	pthread_mutex_lock(&c->mu);
	*out = c->st;
	out->events_pending = c->pending_events + (c->cur ? c->cur->events : 0);
	pthread_mutex_unlock(&c->mu);
	out->entities = c->nents;
}

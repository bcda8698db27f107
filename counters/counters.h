/* counters.h — what each account, client, subject and sender domain sends,
 * counted in Redis (the key schema is counters/SCHEMA.md).
 *
 * The capture thread records events (counters_record, counters_auth, ...);
 * they become deltas in the current batch, one per (entity, minute). At each
 * flush tick of packet time (counters_tick) the batch is handed to a writer
 * thread that sends it to Redis in one pipelined round trip (EVALSHA of the
 * scripts in counters/lua/) and hands back the window totals Redis computed.
 * Redis round trips therefore follow the tick, not the message rate.
 *
 * counters_view() answers "Redis total + local deltas not yet flushed" for
 * an entity, exactly, on every message and while Redis is down: the view is
 * the totals of the last batch Redis acknowledged plus this sensor's batches
 * not yet acknowledged.
 *
 * When Redis is unreachable, batches wait (bounded by max_pending events;
 * past it the oldest batch is dropped and counted), the writer reconnects
 * with jittered exponential backoff and replays them in order into their
 * original buckets. Every script is idempotent per (sensor, run, batch), so a
 * batch cut off by a crash is applied exactly once when replayed. Alerts wait
 * in their own bounded queue and keep their original time.
 *
 * Threading: every function here is called from the capture thread only; the
 * writer thread is internal. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "record.h"

enum entity_type { ENT_ACCOUNT, ENT_CLIENT, ENT_FP, ENT_SHAPE, ENT_DOMAIN, ENT_TYPE_COUNT };

/* Counter fields, as named in SCHEMA.md. */
enum counter_field {
	F_MSGS, F_RCPTS, F_RCPTS_REJ, F_BYTES, F_UNAUTH, F_FAKE_REPLY, F_GIB, F_AUTH_FAIL,
	F_AUTH_OK, F_SESSIONS, F_TLS_SESSIONS, F_TLS_BYTES, F_COUNT
};

/* HyperLogLog kinds, as named in SCHEMA.md. */
enum counter_hll { H_RCPT, H_RDOM, H_ACCT, H_TRIED, H_COUNT };

enum counter_window { W_10M, W_1H, W_COUNT };

#define COUNTERS_ID_MAX 320           /* entity IDs are cut here (SCHEMA.md) */
#define COUNTERS_PREFIX_MAX 63        /* bytes of the key prefix */
#define COUNTERS_KEY_FILE_MAX 4096    /* bytes of a pseudonymisation key file */
#define COUNTERS_ENTITIES_DEFAULT 262144u
#define COUNTERS_ALERTS_PENDING_MAX 10000u

struct counters_config {
	const char *url;              /* redis://..., unix://..., or "embedded" */
	const char *password_file;
	const char *prefix;           /* "rw:"; NULL: that; at most COUNTERS_PREFIX_MAX bytes,
	                               * not empty */
	const char *sensor_name;
	double flush_interval_s;      /* packet time between batches */
	uint64_t max_pending;         /* events (records, auth, sessions) kept unsent */
	uint32_t max_entities;        /* entities tracked in memory */
	uint64_t stream_maxlen;
	double cooldown_s;
	const char *pseudo_key_file;  /* non-NULL: pseudonymise account IDs with
	                               * SipHash-2-4 keyed by this file */
	int timeout_ms;               /* connect/read/write; default 1000 */
	/* Replaying a file faster than real time: at each new hour of packet
	 * time, wait until Redis has answered for the hours before (or failed),
	 * so that hourly baselines are known as they would be live and a
	 * replay raises the same alerts whatever the machine's speed. */
	bool sync_hours;
};

struct counters_view {
	bool known;                       /* Redis answered for this entity at least once */
	uint64_t v[W_COUNT][F_COUNT];
	uint64_t distinct[W_COUNT][H_COUNT];
	bool base_learned;                /* >= 24 hours of history folded */
	double base_msgs, base_rcpts, base_tls_sessions; /* per hour */
	uint64_t first_seen_us;           /* first local event of the entity still in the 10 m window */
};

/* The cooldown in microseconds of packet time, as the sensor
 * (sensor/detect.c) and alert.lua both compare it: they must agree exactly. */
static inline uint64_t counters_cooldown_us(double cooldown_s)
{
	return (uint64_t)(cooldown_s * 1e6);
}

/* An alert, as it goes to the stream (SCHEMA.md "The alert stream"). */
struct counters_alert {
	double ts;
	uint64_t ts_us;                   /* ts exactly, for the cooldown; 0: from ts */
	const char *rule, *severity, *entity_type, *entity, *window;
	/* What value counts ("failures", "accounts_tried", "rcpts"...): with the
	 * rule, the window and the entity, the cooldown's identity (SCHEMA.md,
	 * P{alerts}:cool:...), so that a rule measuring two things escalates each
	 * against itself. Not a field of the stream. NULL: "value". */
	const char *measure;
	double value, threshold;
	double baseline;                  /* < 0: none */
	double first_seen;
	uint64_t msgs_before_alert;
	const char *sample_subject;
	const char *client_ips;
	const char *extra;                /* JSON object */
};

/* Sensor health, written to P sensor:NAME at each flush. */
struct counters_health {
	uint64_t packets_received, packets_dropped, packets_if_dropped;
	uint64_t flows, flows_evicted, records;
	uint64_t sessions;                  /* SMTP sessions parsed now */
	uint64_t sessions_over;             /* not parsed: over --max-sessions (all time) */
	uint64_t rss_bytes, rss_peak_bytes; /* resident memory now, at most; 0: not known */
	uint64_t bad_checksums;             /* TCP segments left out for their checksum (all time) */
	/* whether TCP checksums are verified now: "on", "off", "auto" (not
	 * decided yet), "auto-on", "auto-off" (SCHEMA.md); static storage, NULL
	 * leaves the field out */
	const char *checksums;
};

struct counters_stats {
	uint64_t batches_sent, batches_dropped;
	uint64_t events_pending, events_dropped;
	uint64_t alerts_pending, alerts_dropped, alerts_sent, alerts_duplicate;
	uint64_t commands_sent;           /* Redis commands (EVALSHA ...) */
	uint64_t round_trips;
	uint64_t reconnects, connect_failures;
	uint64_t entities, entities_evicted, entities_refused;
	double last_flush_latency_ms;
	bool connected;
	/* the last round was not taken whole (unreachable, or an error reply:
	 * OOM, READONLY, BUSY, NOPERM...): its batches and alerts are kept and
	 * sent again after a backoff; rounds_failed counts such rounds */
	bool failing;
	uint64_t rounds_failed;
	char last_error[256];
};

struct counters;

/* Parse the URL, read the password and the pseudonymisation key, make the
 * tables: everything that needs the configuration and the secrets, and
 * nothing that runs (no thread, no child). A sensor started as root calls it
 * before dropping privileges, so that the secrets may stay root-only, and
 * counters_start() after. cfg's strings are copied or used before it
 * returns. Returns NULL with err set (bad URL, unreadable password or key
 * file: errno EINVAL; no memory: EIO). */
struct counters *counters_create(const struct counters_config *cfg, char *err, size_t errsz);

/* Start the embedded server if asked (it runs as the caller's user then) and
 * the writer thread. The first connection is attempted in the background:
 * an unreachable Redis is not an error. Returns 0, or -EIO with err set
 * (embedded server failed, no thread). Once only. */
int counters_start(struct counters *c, char *err, size_t errsz);

/* Send what is pending, waiting at most deadline_s seconds for Redis, then
 * stop the writer and the embedded server and free. Returns the number of
 * events and alerts that could not be sent; *final (may be NULL) receives
 * the statistics after the last flush. NULL is fine, and so is a counters
 * never started (nothing is sent then). */
uint64_t counters_destroy(struct counters *c, double deadline_s, struct counters_stats *final);

/* Where Redis is, for humans: never holds the password. Known once
 * counters_create() returned, for --redis embedded once counters_start()
 * did. */
const char *counters_where(const struct counters *c);

/* --- events (capture thread) --- */
void counters_record(struct counters *c, const struct rw_record *r);
/* user: the account tried, as records name accounts (record_account():
 * lower-cased), NULL if the mechanism hid it. */
void counters_auth(struct counters *c, uint64_t ts_us, const char *client, const char *user,
		   bool ok);
void counters_session(struct counters *c, uint64_t ts_us, const char *client, bool tls);
void counters_tls_bytes(struct counters *c, uint64_t ts_us, const char *client, uint64_t bytes);

/* Queue an alert for the stream (deduplicated there). Returns false if the
 * alert queue is full (counted). */
bool counters_alert(struct counters *c, const struct counters_alert *a);

void counters_set_health(struct counters *c, const struct counters_health *h);

/* Packet time advanced: cut a batch when a flush interval has passed, and
 * take in what the writer acknowledged. Cheap when there is nothing to do. */
void counters_tick(struct counters *c, uint64_t now_us);

/* Would counters_tick(c, now_us) cut a batch? Health (counters_set_health)
 * only needs to be current then. */
bool counters_cut_due(const struct counters *c, uint64_t now_us);

/* Redis totals + local deltas not yet acknowledged, for one entity, with the
 * windows ending at now_us. An entity never seen is all zeros.
 * Redis' part is what it returned for this sensor's flushes: the buckets
 * written to at each flush, the whole windows when the entity was first seen
 * and then every few minutes (what other sensors add to other buckets shows
 * within that time). Distinct counts come from Redis only for these kinds
 * (elsewhere only the members not yet acknowledged are counted): account
 * rdom; client tried, acct; fingerprint and shape acct; domain rdom. */
void counters_view(struct counters *c, enum entity_type t, const char *id, uint64_t now_us,
		   struct counters_view *out);

/* True with [privacy] pseudonymize: account names must not leave the
 * sensor, in keys or in alert evidence. */
bool counters_pseudonymizing(const struct counters *c);

/* The entity ID as stored (pseudonymised accounts): for alerts. */
void counters_entity_id(const struct counters *c, enum entity_type t, const char *id,
			char *out, size_t outsz);

void counters_get_stats(struct counters *c, struct counters_stats *out);

const char *counters_entity_type_name(enum entity_type t);
const char *counters_field_name(enum counter_field f);

/* redis_conn.h — where Redis is and how to log in (hiredis 0.14).
 *
 * A struct redis_target is parsed from a URL once; redis_conn_open() makes a
 * ready connection from it: connected, timeouts set (hiredis 0.14 needs
 * redisSetTimeout after every connect), AUTH sent (ACL user or password),
 * database selected, client name set. Reconnecting is calling it again.
 *
 * The password is held only in the target, never printed:
 * redis_target_describe() leaves it out, redis_target_wipe() erases it.
 *
 * redis_embedded_start() runs a private redis-server on a Unix socket in a
 * temporary directory (--redis embedded) and stops it on redis_embedded_stop(). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <hiredis/hiredis.h>

#define REDIS_HOST_MAX 255
#define REDIS_PATH_MAX 107   /* sun_path */
#define REDIS_USER_MAX 128
#define REDIS_PASS_MAX 512

struct redis_target {
	bool unix_socket;
	char host[REDIS_HOST_MAX + 1];
	int port;
	char path[REDIS_PATH_MAX + 1];
	int db;
	char user[REDIS_USER_MAX + 1];   /* "" = the default user */
	char pass[REDIS_PASS_MAX + 1];
	bool has_pass;
	bool lone_userinfo;   /* redis://WORD@host: a password, unless one comes from elsewhere */
};

/* getopt takes any unique abbreviation: "--redis-password SECRET" would read
 * the password as a file name and print it in an error. Returns 0, or
 * -EINVAL with a reason in err (which repeats nothing of the value) when an
 * argument abbreviates --redis-password-file. For every program's argv,
 * before getopt_long. */
int redis_password_option_check(int argc, char **argv, char *err, size_t errsz);

/* redis://[user[:pass]@]host[:port][/db]  (host may be [v6])
 * unix:///path[?db=N]  (also unix://[user[:pass]@]/path?db=N)
 * Percent-escapes in user and password are decoded (%00 is refused: a NUL
 * would end them). Returns 0 or -EINVAL with a reason in err (which never
 * holds the password). */
int redis_target_parse(const char *url, struct redis_target *t, char *err, size_t errsz);

/* Take the password from, in order: the file (first line), the environment
 * variable REDISCLI_AUTH, the URL. One longer than REDIS_PASS_MAX, or a
 * file's holding a NUL byte, is refused (-EINVAL), never cut. A lone
 * userinfo in the URL (redis://sensor@host) is a password as redis-cli reads
 * it, but the user name when the password comes from the file or the
 * environment. Returns 0, or -errno with err set. */
int redis_target_load_password(struct redis_target *t, const char *password_file, char *err,
			       size_t errsz);

/* "redis://user@host:port/db" or "unix:///path?db=N": never the password. */
void redis_target_describe(const struct redis_target *t, char *out, size_t outsz);

void redis_target_wipe(struct redis_target *t);

/* Connect and log in. Returns 0 with *out set, or with err set (never the
 * password):
 *   -EACCES  Redis refused the login or the database: AUTH or SELECT answered
 *            an error (WRONGPASS, NOPERM, a database out of range) that is
 *            not a passing state; trying again will not help;
 *   -EIO     Redis could not be reached, the connection failed, or it
 *            answered that it is not ready yet (redis_error_transient());
 *   -ENOMEM. */
int redis_conn_open(const struct redis_target *t, int timeout_ms, const char *client_name,
		    redisContext **out, char *err, size_t errsz);

/* An error reply (its text, "CODE message") that says Redis is in a state
 * that passes, so the same command may work later: LOADING (reading its
 * dataset at start), BUSY (a long script), MASTERDOWN (a replica lost its
 * master), TRYAGAIN, UNBLOCKED (a blocking read cut short: failover, CLIENT
 * UNBLOCK) or READONLY (a replica, e.g. a master demoted by a failover).
 * The code is matched whole: BUSYGROUP is not BUSY. */
bool redis_error_transient(const char *msg, size_t len);

struct redis_embedded;

/* Start `redis-server` (or $RELAYWATCH_REDIS_SERVER) with no TCP port and no
 * persistence on a socket in a new temporary directory; wait until it
 * answers PING. Returns NULL with err set. */
struct redis_embedded *redis_embedded_start(char *err, size_t errsz);
const char *redis_embedded_socket(const struct redis_embedded *e);
/* SIGTERM, wait, remove the directory. NULL is fine. */
void redis_embedded_stop(struct redis_embedded *e);

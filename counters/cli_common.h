/* cli_common.h — what relaywatch-alerts and relaywatch-top share: the
 * --redis/--redis-prefix/--redis-password-file options, colour detection,
 * entity IDs made readable, text made safe for a terminal or for JSON, and
 * the time arguments (--since, --at).
 *
 * Everything that reaches a terminal from Redis came from the wire (subjects,
 * account names): it goes through cli_text(), which escapes control bytes and
 * invalid UTF-8 (no escape sequence from a mail can reach the terminal) and
 * cuts at a number of display columns. Output is bounded by the caller's
 * buffer, never by what Redis holds.
 *
 * No function here allocates or prints, except cli_usage_error() (stderr). */
#pragma once

#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "redis_conn.h"

#define CLI_PREFIX_MAX 63          /* bytes of --redis-prefix: the sensor's own bound
                                      (COUNTERS_PREFIX_MAX), so a reader never looks
                                      for keys no sensor can write */
#define CLI_ID_MAX 320             /* entity IDs are cut here by the sensor (SCHEMA.md) */
#define CLI_URL_DEFAULT "redis://127.0.0.1:6379"
#define CLI_PREFIX_DEFAULT "rw:"

/* Exit status, as the sensor's. */
enum { CLI_EXIT_OK = 0, CLI_EXIT_RUNTIME = 1, CLI_EXIT_USAGE = 2 };

/* getopt_long values of the shared options. */
enum {
	CLI_OPT_REDIS = 0x100,
	CLI_OPT_PREFIX,
	CLI_OPT_PASSWORD_FILE,
	CLI_OPT_NO_COLOR,
	CLI_OPT_FIRST_FREE,       /* the programs number their own options from here */
};

#define CLI_LONG_OPTIONS                                                              \
	{ "redis", required_argument, NULL, CLI_OPT_REDIS },                          \
	{ "redis-prefix", required_argument, NULL, CLI_OPT_PREFIX },                  \
	{ "redis-password-file", required_argument, NULL, CLI_OPT_PASSWORD_FILE },    \
	{ "no-color", no_argument, NULL, CLI_OPT_NO_COLOR },                          \
	{ "help", no_argument, NULL, 'h' },                                           \
	{ "version", no_argument, NULL, 'V' }

/* The help text of the shared options, for the programs' --help. */
#define CLI_HELP_REDIS                                                                         \
	"  --redis URL                 redis://[user[:pass]@]host[:port][/db] or unix:///path[?db=N]\n" \
	"                              [" CLI_URL_DEFAULT "]\n"                                 \
	"  --redis-prefix PREFIX       key prefix the sensor writes with [" CLI_PREFIX_DEFAULT "]\n" \
	"  --redis-password-file FILE  password (first line); else $REDISCLI_AUTH, else the URL\n" \
	"  --no-color                  no colours (also: NO_COLOR set in the environment)\n"     \
	"  -h, --help                  this help\n"                                              \
	"  -V, --version               version\n"

struct cli_redis {
	const char *url;
	const char *prefix;
	const char *password_file;
	bool no_color;
};

void cli_redis_init(struct cli_redis *o);

/* Takes one of the shared options (c from getopt_long). Returns true if c was
 * one of them. */
bool cli_redis_option(struct cli_redis *o, int c, const char *arg);

/* Parse the URL and load the password (file, $REDISCLI_AUTH, URL), check the
 * prefix. Returns 0 or a negative errno with a reason in err (never the
 * password). */
int cli_redis_target(const struct cli_redis *o, struct redis_target *t, char *err,
		     size_t errsz);

/* Colours on fd: a terminal, no --no-color, NO_COLOR unset or empty
 * (no-color.org), TERM not "dumb". */
bool cli_color_wanted(int fd, bool no_color_flag);

/* --version: "PROG VERSION (hiredis X.Y.Z, jansson V)" on stdout. */
void cli_print_version(const char *prog);

/* getopt takes unique abbreviations: "--redis-password SECRET" would read the
 * password as a file name and print it in an error. Returns 0, or, after
 * saying so (without repeating the value), CLI_EXIT_USAGE when an argument
 * abbreviates --redis-password-file. Call before getopt_long. */
int cli_check_password_option(const char *prog, int argc, char **argv);

/* "PROG: message (try --help)" on stderr; returns CLI_EXIT_USAGE. */
__attribute__((format(printf, 2, 3)))
int cli_usage_error(const char *prog, const char *fmt, ...);

/* Undo the sensor's percent-escaping of an entity ID (SCHEMA.md): "%7B" ->
 * "{". A '%' not followed by two hex digits stays as it is. Writes at most
 * outsz - 1 bytes and a NUL; the result may hold NUL bytes (from "%00"), so
 * the length is returned. */
size_t cli_id_decode(const char *id, size_t n, char *out, size_t outsz);

/* Make bytes safe and readable on a terminal:
 *  - printable UTF-8 is kept;
 *  - C0/C1 controls, DEL, bidirectional overrides (U+202A..E, U+2066..9),
 *    U+2028/9 and invalid UTF-8 become \xNN or \uXXXX;
 *  - with quote, '"' and '\' are escaped too (for "..." around a subject).
 * Cut so that it takes at most max_cols display columns (East Asian wide
 * characters take two), ending with "…" if something was cut; never cuts
 * inside a character or an escape. Always NUL-terminates out (outsz > 0).
 * Returns the display columns used (for padding). */
size_t cli_text(const char *s, size_t n, bool quote, size_t max_cols, char *out, size_t outsz);

/* Copy as valid UTF-8 (for JSON): invalid bytes become U+FFFD. At most
 * outsz - 1 bytes, never a cut character; returns the length (NUL bytes kept). */
size_t cli_utf8_clean(const char *s, size_t n, char *out, size_t outsz);

/* Time arguments. Accepts:
 *   "0", "all"                      -> 0 (the beginning)
 *   "90s", "10m", "1h", "2d", "1w"  -> that long before now
 *   "1795417934", "1795417934.5"    -> unix seconds
 *   "2026-11-23", "2026-11-23T10:00", "2026-11-23 10:00:05", with an optional
 *   "Z" or "+09:00"/"-0500"          -> that time (local time without a zone)
 * Returns 0 or -EINVAL. */
int cli_parse_time(const char *s, double now, double *out);

/* "2026-11-23T10:00:05+09:00" in local time. */
void cli_iso_local(double t, char *out, size_t outsz);

/* A positive decimal with bounds, for -n and --interval. */
int cli_parse_double(const char *s, double min, double max, double *out);

/* Sleep up to ms, returning early when *stop becomes non-zero. */
void cli_sleep_ms(long ms, const volatile sig_atomic_t *stop);

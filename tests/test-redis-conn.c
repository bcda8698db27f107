/* test-redis-conn.c — counters/redis_conn.c: URLs, where the password comes
 * from, and that a description never shows it. */
#include "testlib.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "redis_conn.h"

static void test_tcp_urls(void)
{
	struct redis_target t;
	char err[256];
	CHECK_INT(redis_target_parse("redis://127.0.0.1:6380/3", &t, err, sizeof err), 0);
	CHECK_STR(t.host, "127.0.0.1");
	CHECK_INT(t.port, 6380);
	CHECK_INT(t.db, 3);
	CHECK(!t.has_pass);
	CHECK_INT(redis_target_parse("redis://sensor:s%40cret@[::1]/0", &t, err, sizeof err), 0);
	CHECK_STR(t.host, "::1");
	CHECK_INT(t.port, 6379);
	CHECK_STR(t.user, "sensor");
	CHECK_STR(t.pass, "s@cret");
	CHECK_INT(redis_target_parse("redis://:onlypass@h", &t, err, sizeof err), 0);
	CHECK_STR(t.user, "");
	CHECK_STR(t.pass, "onlypass");
	/* the last '@' ends the userinfo */
	CHECK_INT(redis_target_parse("redis://u:p@ss@h:1", &t, err, sizeof err), 0);
	CHECK_STR(t.pass, "p@ss");
	CHECK_STR(t.host, "h");
}

static void test_unix_urls(void)
{
	struct redis_target t;
	char err[256];
	CHECK_INT(redis_target_parse("unix:///run/redis/redis.sock?db=2", &t, err, sizeof err), 0);
	CHECK(t.unix_socket);
	CHECK_STR(t.path, "/run/redis/redis.sock");
	CHECK_INT(t.db, 2);
	CHECK_INT(redis_target_parse("unix://alerts:pw@/tmp/r.sock", &t, err, sizeof err), 0);
	CHECK_STR(t.user, "alerts");
	CHECK_STR(t.pass, "pw");
}

static void test_bad_urls(void)
{
	struct redis_target t;
	char err[256];
	static const char *bad[] = {
		"rediss://h", "http://h", "redis://h:0", "redis://h:70000", "redis://h:x",
		"redis://h/abc", "redis://[::1", "unix://relative/path", "unix:///p?database=1",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err[0] = 0;
		CHECK_INT(redis_target_parse(bad[i], &t, err, sizeof err), -22);
		CHECK(err[0] != 0);
	}
	/* the reason never repeats a password */
	CHECK_INT(redis_target_parse("redis://u:Sekr1t@h:99999", &t, err, sizeof err), -22);
	CHECK(strstr(err, "Sekr1t") == NULL);
	/* nor when the scheme is wrong, or a password stands where the URL goes */
	static const char *leaky[] = { "http://u:Sekr1t@h", "Sekr1t", "redis:/u:Sekr1t@h",
				       "u:Sekr1t@h:6379", /* an unescaped '/' in the password */
				       "redis://u:Sek/r1t@h", "redis://u:Sekr1t/x@h" };
	for (size_t i = 0; i < sizeof leaky / sizeof leaky[0]; i++) {
		err[0] = 0;
		CHECK_INT(redis_target_parse(leaky[i], &t, err, sizeof err), -22);
		CHECK(err[0] != 0 && strstr(err, "Sekr1t") == NULL);
	}
	CHECK_INT(redis_target_parse("http://h", &t, err, sizeof err), -22);
	CHECK(strstr(err, "http://") != NULL); /* the scheme is named */
}

static void test_password_option_spelled_out(void)
{
	char err[256];
	char *ok[] = { "prog", "--redis-password-file", "/x", "--redis", "redis://h",
		       "--redis-prefix", "p:", "--", "--redis-password", NULL };
	CHECK_INT(redis_password_option_check(9, ok, err, sizeof err), 0);
	char *abbrev[] = { "prog", "--redis-password", "Sekr1t", NULL };
	CHECK_INT(redis_password_option_check(3, abbrev, err, sizeof err), -22);
	CHECK(strstr(err, "--redis-password:") && !strstr(err, "Sekr1t"));
	char *eq[] = { "prog", "--redis-pa=Sekr1t", NULL };
	CHECK_INT(redis_password_option_check(2, eq, err, sizeof err), -22);
	CHECK(!strstr(err, "Sekr1t"));
}

static void test_password_sources(void)
{
	struct redis_target t;
	char err[256], path[] = "/tmp/rw-test-pw-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	CHECK(write(fd, "from-file\nignored\n", 18) == 18);
	close(fd);
	/* redis://sensor@h with a password file: "sensor" is the user */
	CHECK_INT(redis_target_parse("redis://sensor@h", &t, err, sizeof err), 0);
	CHECK_STR(t.pass, "sensor");
	CHECK_INT(redis_target_load_password(&t, path, err, sizeof err), 0);
	CHECK_STR(t.user, "sensor");
	CHECK_STR(t.pass, "from-file");
	/* the environment, when no file */
	setenv("REDISCLI_AUTH", "from-env", 1);
	CHECK_INT(redis_target_parse("redis://alerts@h", &t, err, sizeof err), 0);
	CHECK_INT(redis_target_load_password(&t, NULL, err, sizeof err), 0);
	CHECK_STR(t.user, "alerts");
	CHECK_STR(t.pass, "from-env");
	unsetenv("REDISCLI_AUTH");
	/* neither: the lone userinfo stays a password, as redis-cli reads it */
	CHECK_INT(redis_target_parse("redis://secret@h", &t, err, sizeof err), 0);
	CHECK_INT(redis_target_load_password(&t, NULL, err, sizeof err), 0);
	CHECK_STR(t.user, "");
	CHECK_STR(t.pass, "secret");
	/* a missing file is an error that names it */
	CHECK(redis_target_load_password(&t, "/nonexistent/pw", err, sizeof err) < 0);
	CHECK(strstr(err, "/nonexistent/pw") != NULL);
	unlink(path);
}

/* A password is used whole or refused: a file's first line longer than
 * REDIS_PASS_MAX was cut there, and a NUL byte (%00 in a URL, or in the
 * file) ended it early; either way Redis got another password. */
static void write_file(const char *path, const char *data, size_t n)
{
	FILE *f = fopen(path, "wb");
	CHECK(f != NULL);
	if (!f)
		return;
	CHECK(fwrite(data, 1, n, f) == n);
	fclose(f);
}

static void test_password_limits(void)
{
	struct redis_target t;
	char err[256], path[] = "/tmp/rw-test-pw-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	close(fd);
	char pw[REDIS_PASS_MAX + 3];
	memset(pw, 'p', sizeof pw);
	/* at the limit, with a newline (and with CRLF): taken whole */
	pw[REDIS_PASS_MAX] = '\n';
	write_file(path, pw, REDIS_PASS_MAX + 1);
	CHECK_INT(redis_target_parse("redis://h", &t, err, sizeof err), 0);
	CHECK_INT(redis_target_load_password(&t, path, err, sizeof err), 0);
	CHECK_INT(strlen(t.pass), REDIS_PASS_MAX);
	pw[REDIS_PASS_MAX] = '\r';
	pw[REDIS_PASS_MAX + 1] = '\n';
	write_file(path, pw, REDIS_PASS_MAX + 2);
	CHECK_INT(redis_target_load_password(&t, path, err, sizeof err), 0);
	CHECK_INT(strlen(t.pass), REDIS_PASS_MAX);
	/* at the limit without a newline: taken whole */
	write_file(path, pw, REDIS_PASS_MAX);
	CHECK_INT(redis_target_load_password(&t, path, err, sizeof err), 0);
	CHECK_INT(strlen(t.pass), REDIS_PASS_MAX);
	/* one past it, with or without a newline: refused, not cut */
	memset(pw, 'p', sizeof pw);
	pw[REDIS_PASS_MAX + 1] = '\n';
	write_file(path, pw, REDIS_PASS_MAX + 2);
	err[0] = 0;
	CHECK_INT(redis_target_load_password(&t, path, err, sizeof err), -22);
	CHECK(strstr(err, path) && strstr(err, "longer than 512 bytes") && !strstr(err, "ppp"));
	write_file(path, pw, REDIS_PASS_MAX + 1);
	CHECK_INT(redis_target_load_password(&t, path, err, sizeof err), -22);
	write_file(path, pw, sizeof pw);
	CHECK_INT(redis_target_load_password(&t, path, err, sizeof err), -22);
	/* a NUL byte in the first line */
	write_file(path, "Sekr\0t\n", 7);
	err[0] = 0;
	CHECK_INT(redis_target_load_password(&t, path, err, sizeof err), -22);
	CHECK(strstr(err, "NUL") && !strstr(err, "Sekr"));
	/* the environment's password is bounded as well */
	pw[REDIS_PASS_MAX + 1] = 0;
	setenv("REDISCLI_AUTH", pw, 1);
	CHECK_INT(redis_target_load_password(&t, NULL, err, sizeof err), -22);
	CHECK(strstr(err, "REDISCLI_AUTH") && !strstr(err, "ppp"));
	pw[REDIS_PASS_MAX] = 0;
	setenv("REDISCLI_AUTH", pw, 1);
	CHECK_INT(redis_target_load_password(&t, NULL, err, sizeof err), 0);
	CHECK_INT(strlen(t.pass), REDIS_PASS_MAX);
	unsetenv("REDISCLI_AUTH");
	unlink(path);
	/* %00 in a URL's user name or password */
	static const char *nul[] = { "redis://:Sekr%00t@h", "redis://u:Sekr%00t@h",
				     "redis://Sekr%00t@h", "redis://u%00x:Sekr1t@h",
				     "unix://u:Sekr%00t@/tmp/r.sock" };
	for (size_t i = 0; i < sizeof nul / sizeof nul[0]; i++) {
		err[0] = 0;
		CHECK_INT(redis_target_parse(nul[i], &t, err, sizeof err), -22);
		CHECK(strstr(err, "%00") && !strstr(err, "Sekr"));
	}
	/* other escapes still decode */
	CHECK_INT(redis_target_parse("redis://u:a%40b%3Ac@h", &t, err, sizeof err), 0);
	CHECK_STR(t.pass, "a@b:c");
}

static void test_describe_hides_password(void)
{
	struct redis_target t;
	char err[256], d[512];
	CHECK_INT(redis_target_parse("redis://sensor:Pa55word@10.0.0.5:6390/1", &t, err, sizeof err), 0);
	redis_target_describe(&t, d, sizeof d);
	CHECK_STR(d, "redis://sensor@10.0.0.5:6390/1");
	redis_target_wipe(&t);
	CHECK(!t.has_pass);
	CHECK_STR(t.pass, "");
}

/* Which error replies are a state that passes (the readers retry them) */
static void test_error_transient(void)
{
	static const char *const yes[] = {
		"LOADING Redis is loading the dataset in memory",
		"BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.",
		"MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
		"TRYAGAIN Multiple keys request during rehashing of slot",
		"UNBLOCKED client unblocked via CLIENT UNBLOCK",
		"READONLY You can't write against a read only replica.",
		"LOADING",
	};
	static const char *const no[] = {
		"BUSYGROUP Consumer Group name already exists", "BUSYKEY Target key name already exists.",
		"WRONGPASS invalid username-password pair or user is disabled.",
		"NOPERM this user has no permissions to run the 'xread' command",
		"ERR DB index is out of range", "NOGROUP No such key", "LOADINGX", "", "loading x",
	};
	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
		CHECK(redis_error_transient(yes[i], strlen(yes[i])));
	for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
		CHECK(!redis_error_transient(no[i], strlen(no[i])));
	/* the length given is the end, not a NUL */
	CHECK(redis_error_transient("BUSYGROUP", 4));
}

int main(void)
{
	RUN(test_tcp_urls);
	RUN(test_unix_urls);
	RUN(test_bad_urls);
	RUN(test_password_option_spelled_out);
	RUN(test_password_sources);
	RUN(test_password_limits);
	RUN(test_describe_hides_password);
	RUN(test_error_transient);
	return TEST_EXIT();
}

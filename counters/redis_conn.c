/* redis_conn.c — Redis URLs, login and the embedded server; see redis_conn.h. */
#include "redis_conn.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void wipe(void *p, size_t n)
{
	volatile unsigned char *v = p;
	while (n--)
		*v++ = 0;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9') return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	return -1;
}

/* Percent-decode [s, s+n) into out. Returns 0, -E2BIG if it does not fit,
 * or -EINVAL for %00: the user name and the password are C strings (and
 * AUTH's arguments are sent as such), so a NUL would cut them short. */
static int pct_decode(const char *s, size_t n, char *out, size_t outsz)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '%' && i + 2 < n && hexval((unsigned char)s[i + 1]) >= 0 &&
		    hexval((unsigned char)s[i + 2]) >= 0) {
			c = (char)(hexval((unsigned char)s[i + 1]) * 16 + hexval((unsigned char)s[i + 2]));
			i += 2;
			if (!c) {
				wipe(out, outsz);
				return -EINVAL;
			}
		}
		if (o + 1 >= outsz)
			return -E2BIG;
		out[o++] = c;
	}
	out[o] = 0;
	return 0;
}

static int parse_userinfo(const char *s, size_t n, struct redis_target *t, char *err,
			  size_t errsz)
{
	const char *colon = memchr(s, ':', n);
	size_t ul = colon ? (size_t)(colon - s) : n;
	int r = pct_decode(s, ul, t->user, sizeof t->user);
	if (r < 0) {
		/* without a colon it is the password (a lone userinfo) */
		snprintf(err, errsz, "%s %s", colon ? "user name" : "user name or password",
			 r == -EINVAL ? "holds %00 (a NUL byte), which no login can carry"
				      : "too long");
		return -EINVAL;
	}
	if (colon) {
		r = pct_decode(colon + 1, n - ul - 1, t->pass, sizeof t->pass);
		if (r < 0) {
			snprintf(err, errsz, "password %s", r == -EINVAL ?
				 "holds %00 (a NUL byte), which no login can carry" : "too long");
			return -EINVAL;
		}
		t->has_pass = true;
	} else if (t->user[0]) {
		/* redis://secret@host: a lone userinfo is the password (redis-cli) */
		snprintf(t->pass, sizeof t->pass, "%s", t->user);
		t->user[0] = 0;
		t->has_pass = true;
		t->lone_userinfo = true;
	}
	return 0;
}

static int parse_db(const char *s, int *db)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (end == s || *end || errno || v < 0 || v > 65535)
		return -EINVAL;
	*db = (int)v;
	return 0;
}

int redis_password_option_check(int argc, char **argv, char *err, size_t errsz)
{
	static const char pwf[] = "redis-password-file";
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++) {
		const char *a = argv[i];
		if (strncmp(a, "--redis-pa", 10))
			continue;
		size_t l = strcspn(a + 2, "=");
		if (l < sizeof pwf - 1 && !strncmp(a + 2, pwf, l)) {
			snprintf(err, errsz, "--%.*s: write --redis-password-file FILE in full (the "
				 "file holds the password; one on the command line would be seen "
				 "by every user)", (int)l, a + 2);
			return -EINVAL;
		}
	}
	return 0;
}

int redis_target_parse(const char *url, struct redis_target *t, char *err, size_t errsz)
{
	memset(t, 0, sizeof *t);
	t->port = 6379;
	if (!strncmp(url, "rediss://", 9)) {
		snprintf(err, errsz, "TLS (rediss://) is not supported by hiredis 0.14; use a local "
			 "stunnel or a Unix socket");
		return -EINVAL;
	}
	if (!strncmp(url, "unix://", 7)) {
		t->unix_socket = true;
		const char *p = url + 7;
		const char *slash = strchr(p, '/');
		if (!slash) {
			snprintf(err, errsz, "unix URL needs an absolute path: unix:///path/to/sock");
			return -EINVAL;
		}
		const char *at = memchr(p, '@', (size_t)(slash - p));
		if (slash != p && (!at || at + 1 != slash)) {
			/* unix://host/...: there is no host, only [userinfo@]/path */
			snprintf(err, errsz, "unix URL needs an absolute path: unix:///path/to/sock");
			return -EINVAL;
		}
		if (at && parse_userinfo(p, (size_t)(at - p), t, err, errsz) < 0)
			return -EINVAL;
		const char *q = strchr(slash, '?');
		size_t pl = q ? (size_t)(q - slash) : strlen(slash);
		if (pl > REDIS_PATH_MAX) {
			snprintf(err, errsz, "socket path longer than %d bytes", REDIS_PATH_MAX);
			return -EINVAL;
		}
		memcpy(t->path, slash, pl);
		t->path[pl] = 0;
		if (q) {
			if (strncmp(q, "?db=", 4) || parse_db(q + 4, &t->db) < 0) {
				snprintf(err, errsz, "bad query in unix URL (expected ?db=N)");
				return -EINVAL;
			}
		}
		return 0;
	}
	if (strncmp(url, "redis://", 8)) {
		/* Name the scheme only: the rest may hold a password (a mistyped
		 * scheme, or a bare password given where the URL goes). */
		const char *sep = strstr(url, "://");
		size_t sl = sep ? (size_t)(sep - url) : 0;
		if (sl && sl <= 16 && strspn(url, "abcdefghijklmnopqrstuvwxyz"
					     "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-") == sl)
			snprintf(err, errsz, "%.*s:// is not redis:// or unix://; the URL can also be "
				 "'embedded' or 'none'", (int)sl, url);
		else
			snprintf(err, errsz, "not a redis:// or unix:// URL, 'embedded' or 'none' "
				 "(not repeated here: it may hold a password)");
		return -EINVAL;
	}
	const char *p = url + 8;
	const char *slash = strchr(p, '/');
	size_t alen = slash ? (size_t)(slash - p) : strlen(p);
	/* the last '@' of the authority ends the userinfo */
	const char *at = NULL;
	for (const char *c = p; c < p + alen; c++)
		if (*c == '@')
			at = c;
	if (at) {
		if (parse_userinfo(p, (size_t)(at - p), t, err, errsz) < 0)
			return -EINVAL;
		alen -= (size_t)(at + 1 - p);
		p = at + 1;
	}
	const char *hend;
	const char *port = NULL;
	if (*p == '[') {
		const char *rb = memchr(p, ']', alen);
		if (!rb) {
			snprintf(err, errsz, "unterminated [IPv6] host");
			return -EINVAL;
		}
		if ((size_t)(rb - p - 1) > REDIS_HOST_MAX)
			goto too_long;
		memcpy(t->host, p + 1, (size_t)(rb - p - 1));
		hend = rb + 1;
		if (hend < p + alen && *hend == ':')
			port = hend + 1;
	} else {
		const char *colon = memchr(p, ':', alen);
		hend = colon ? colon : p + alen;
		if ((size_t)(hend - p) > REDIS_HOST_MAX)
			goto too_long;
		memcpy(t->host, p, (size_t)(hend - p));
		if (colon)
			port = colon + 1;
	}
	if (!t->host[0])
		snprintf(t->host, sizeof t->host, "127.0.0.1");
	if (port) {
		char pb[8] = "";
		size_t pl = (size_t)(p + alen - port);
		char *end;
		if (pl == 0 || pl >= sizeof pb) {
			snprintf(err, errsz, "bad port in Redis URL");
			return -EINVAL;
		}
		memcpy(pb, port, pl);
		long v = strtol(pb, &end, 10);
		if (*end || v < 1 || v > 65535) {
			/* not repeated: a password with an unescaped '/' ends up here */
			snprintf(err, errsz, "bad port in Redis URL (1-65535)");
			return -EINVAL;
		}
		t->port = (int)v;
	}
	if (slash && slash[1] && parse_db(slash + 1, &t->db) < 0) {
		snprintf(err, errsz, "bad database number in Redis URL (a whole number, /0 to /65535)");
		return -EINVAL;
	}
	return 0;
too_long:
	snprintf(err, errsz, "host name longer than %d bytes", REDIS_HOST_MAX);
	return -EINVAL;
}

/* The password comes from elsewhere: a lone userinfo was the user name. */
static void userinfo_is_user(struct redis_target *t)
{
	if (!t->lone_userinfo)
		return;
	snprintf(t->user, sizeof t->user, "%s", t->pass);
	t->lone_userinfo = false;
}

int redis_target_load_password(struct redis_target *t, const char *password_file, char *err,
			       size_t errsz)
{
	if (password_file) {
		FILE *f = fopen(password_file, "r");
		if (!f) {
			int e = errno;
			snprintf(err, errsz, "%s: %s", password_file, strerror(e));
			return -e;
		}
		/* the first line, and one byte more than a password may have:
		 * a longer one is refused, not cut */
		char buf[REDIS_PASS_MAX + 1];
		size_t got = fread(buf, 1, sizeof buf, f);
		int e = ferror(f) ? errno : 0;
		fclose(f);
		size_t n = 0;
		while (n < got && buf[n] != '\r' && buf[n] != '\n')
			n++;
		int r = -EINVAL;
		if (e) {
			snprintf(err, errsz, "%s: %s", password_file, strerror(e));
			r = -e;
		} else if (!n) {
			snprintf(err, errsz, "%s: empty password file", password_file);
		} else if (n > REDIS_PASS_MAX) {
			snprintf(err, errsz, "%s: the password is longer than %d bytes", password_file,
				 REDIS_PASS_MAX);
		} else if (memchr(buf, 0, n)) {
			/* AUTH's arguments go as C strings: it would end there */
			snprintf(err, errsz, "%s: the password holds a NUL byte", password_file);
		} else {
			userinfo_is_user(t);
			memcpy(t->pass, buf, n);
			t->pass[n] = 0;
			t->has_pass = true;
			r = 0;
		}
		wipe(buf, sizeof buf);
		return r;
	}
	const char *env = getenv("REDISCLI_AUTH");
	if (env && *env) {
		if (strlen(env) > REDIS_PASS_MAX) {
			snprintf(err, errsz, "REDISCLI_AUTH: the password is longer than %d bytes",
				 REDIS_PASS_MAX);
			return -EINVAL;
		}
		userinfo_is_user(t);
		snprintf(t->pass, sizeof t->pass, "%s", env);
		t->has_pass = true;
	}
	return 0;
}

void redis_target_describe(const struct redis_target *t, char *out, size_t outsz)
{
	if (t->unix_socket)
		snprintf(out, outsz, "unix://%s%s%s?db=%d", t->user, t->user[0] ? "@" : "", t->path,
			 t->db);
	else
		snprintf(out, outsz, "redis://%s%s%s%s%s:%d/%d", t->user, t->user[0] ? "@" : "",
			 strchr(t->host, ':') ? "[" : "", t->host, strchr(t->host, ':') ? "]" : "",
			 t->port, t->db);
}

void redis_target_wipe(struct redis_target *t)
{
	wipe(t->pass, sizeof t->pass);
	t->has_pass = false;
}

bool redis_error_transient(const char *msg, size_t len)
{
	static const char *const codes[] = { "LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN",
					     "UNBLOCKED", "READONLY" };
	size_t n = 0;
	while (n < len && msg[n] != ' ')
		n++;
	for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
		if (n == strlen(codes[i]) && !memcmp(msg, codes[i], n))
			return true;
	return false;
}

/* The reply to a login step (AUTH, SELECT): 0, -EIO (no reply, or a state
 * that passes) or -EACCES (refused). Frees r. */
static int login_reply(redisContext *c, redisReply *r, const char *where, const char *what,
		       char *err, size_t errsz)
{
	if (!r) {
		snprintf(err, errsz, "%s: %s: %s", where, what,
			 c->errstr[0] ? c->errstr : "no reply");
		return -EIO;
	}
	int res = 0;
	if (r->type == REDIS_REPLY_ERROR) {
		snprintf(err, errsz, "%s: %s: %s", where, what, r->str);
		res = redis_error_transient(r->str, r->len) ? -EIO : -EACCES;
	}
	freeReplyObject(r);
	return res;
}

int redis_conn_open(const struct redis_target *t, int timeout_ms, const char *client_name,
		    redisContext **out, char *err, size_t errsz)
{
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	redisContext *c = t->unix_socket ? redisConnectUnixWithTimeout(t->path, tv)
					 : redisConnectWithTimeout(t->host, t->port, tv);
	char where[512];
	int res = -EIO;
	*out = NULL;
	redis_target_describe(t, where, sizeof where);
	if (!c) {
		snprintf(err, errsz, "%s: cannot allocate a connection", where);
		return -ENOMEM;
	}
	if (c->err) {
		snprintf(err, errsz, "%s: %s", where, c->errstr);
		goto out_free;
	}
	/* hiredis 0.14 applies the connect timeout only to connect(): the
	 * read/write timeout must be set on every new connection. */
	if (redisSetTimeout(c, tv) != REDIS_OK) {
		snprintf(err, errsz, "%s: cannot set timeouts", where);
		goto out_free;
	}
	/* TCP only: on a Unix socket hiredis records the failure in c->err,
	 * which poisons every later command. */
	if (!t->unix_socket)
		redisEnableKeepAlive(c);
	if (t->has_pass) {
		redisReply *r;
		if (t->user[0]) {
			const char *argv[] = { "AUTH", t->user, t->pass };
			r = redisCommandArgv(c, 3, argv, NULL);
		} else {
			const char *argv[] = { "AUTH", t->pass };
			r = redisCommandArgv(c, 2, argv, NULL);
		}
		res = login_reply(c, r, where, "AUTH", err, errsz);
		if (res < 0)
			goto out_free;
	}
	if (t->db) {
		char db[16];
		snprintf(db, sizeof db, "%d", t->db);
		const char *argv[] = { "SELECT", db };
		res = login_reply(c, redisCommandArgv(c, 2, argv, NULL), where, "SELECT", err, errsz);
		if (res < 0)
			goto out_free;
	}
	if (client_name) {
		/* Cosmetic (CLIENT LIST shows who is who): an ACL that forbids it
		 * does not stop us. */
		const char *argv[] = { "CLIENT", "SETNAME", client_name };
		redisReply *r = redisCommandArgv(c, 3, argv, NULL);
		if (!r) {
			snprintf(err, errsz, "%s: %s", where, c->errstr);
			res = -EIO;
			goto out_free;
		}
		freeReplyObject(r);
	}
	*out = c;
	return 0;
out_free:
	redisFree(c);
	return res;
}

/* --- the embedded server ------------------------------------------------------ */

struct redis_embedded {
	pid_t pid;
	char dir[64];
	char sock[128];
};

static void remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d))) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			char p[512];
			snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
			unlink(p);
		}
		closedir(d);
	}
	rmdir(dir);
}

struct redis_embedded *redis_embedded_start(char *err, size_t errsz)
{
	struct redis_embedded *e = calloc(1, sizeof *e);
	if (!e) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	const char *tmp = getenv("TMPDIR");
	snprintf(e->dir, sizeof e->dir, "%s/relaywatch-XXXXXX",
		 tmp && strlen(tmp) < 40 ? tmp : "/tmp");
	if (!mkdtemp(e->dir)) {
		snprintf(err, errsz, "cannot create a temporary directory: %s", strerror(errno));
		free(e);
		return NULL;
	}
	snprintf(e->sock, sizeof e->sock, "%s/redis.sock", e->dir);
	const char *server = getenv("RELAYWATCH_REDIS_SERVER");
	if (!server || !*server)
		server = "redis-server";
	char logfile[128];
	snprintf(logfile, sizeof logfile, "%s/redis.log", e->dir);
	pid_t parent = getpid();
	e->pid = fork();
	if (e->pid < 0) {
		snprintf(err, errsz, "fork: %s", strerror(errno));
		goto out_rmdir;
	}
	if (e->pid == 0) {
		/* Die with the sensor, even if it is SIGKILLed. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(1);
		execlp(server, server, "--port", "0", "--unixsocket", e->sock, "--unixsocketperm",
		       "700", "--save", "", "--appendonly", "no", "--dir", e->dir, "--daemonize",
		       "no", "--logfile", logfile, (char *)NULL);
		_exit(127);
	}
	/* Wait until it answers PING (at most 10 s). */
	for (int i = 0; i < 200; i++) {
		int status;
		if (waitpid(e->pid, &status, WNOHANG) == e->pid) {
			snprintf(err, errsz, "%s did not start (exit %d): is redis-server installed? "
				 "(apt-get install redis-server)", server,
				 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
			e->pid = 0;
			goto out_rmdir;
		}
		struct timeval tv = { 0, 200000 };
		redisContext *c = redisConnectUnixWithTimeout(e->sock, tv);
		if (c && !c->err) {
			redisReply *r = redisCommand(c, "PING");
			bool ok = r && r->type == REDIS_REPLY_STATUS;
			if (r)
				freeReplyObject(r);
			redisFree(c);
			if (ok)
				return e;
		} else if (c) {
			redisFree(c);
		}
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	snprintf(err, errsz, "embedded redis-server did not answer within 10 s");
	redis_embedded_stop(e);
	return NULL;
out_rmdir:
	remove_dir(e->dir);
	free(e);
	return NULL;
}

const char *redis_embedded_socket(const struct redis_embedded *e)
{
	return e->sock;
}

void redis_embedded_stop(struct redis_embedded *e)
{
	if (!e)
		return;
	if (e->pid > 0) {
		kill(e->pid, SIGTERM);
		int status;
		for (int i = 0; i < 100; i++) {
			if (waitpid(e->pid, &status, WNOHANG) == e->pid)
				goto reaped;
			struct timespec ts = { 0, 20 * 1000 * 1000 };
			nanosleep(&ts, NULL);
		}
		kill(e->pid, SIGKILL);
		waitpid(e->pid, &status, 0);
	}
reaped:
	remove_dir(e->dir);
	free(e);
}

/* output.c — line outputs; see output.h for the contract. */
#include "output.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Where the bytes go: a file of its own, or stdout, which every "-" output
 * shares (so that their lines keep the order they were written in). */
struct sink {
	int fd;
	bool regular;     /* a regular file: a cut line can be taken back */
	unsigned refs;
	char *buf;        /* whole lines not yet written */
	size_t len, cap;
	size_t partial;   /* bytes of buf's first line already in the file (a short write) */
	int err;          /* the last write's error while lines wait, else 0 */
	int first_err;    /* the first write error, for the report at the end */
	bool broken;      /* EPIPE: nobody reads any more, trying again cannot help */
};

struct output {
	struct sink *sink;
	bool is_stdout;
	uint64_t lines, lost;
	char path[];
};

static struct sink stdout_sink = { .fd = STDOUT_FILENO };

static bool is_regular(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

/* Write what waits, whole or as far as the file takes it; what the file
 * refused stays for the next try. A short write leaves part of a line in
 * the file: the line stays in buf whole and `partial` says how much of it
 * the file has, so that the rest can follow, or the part be taken back
 * (sink_cut_back) and the line written whole elsewhere. Returns 0 or
 * -errno. */
static int sink_write(struct sink *k)
{
	size_t off = k->partial;
	int r = 0;
	while (off < k->len) {
		ssize_t w = write(k->fd, k->buf + off, k->len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			r = w < 0 ? -errno : -EIO;
			break;
		}
		off += (size_t)w;
	}
	/* the lines written whole leave buf */
	const char *nl = off ? memrchr(k->buf, '\n', off) : NULL;
	size_t done = nl ? (size_t)(nl - k->buf) + 1 : 0;
	memmove(k->buf, k->buf + done, k->len - done);
	k->len -= done;
	k->partial = off - done;
	if (r < 0) {
		k->err = -r;
		k->broken = r == -EPIPE;
		if (!k->first_err)
			k->first_err = -r;
	} else {
		k->err = 0;
	}
	return r;
}

/* Lines still waiting when a file is left (closed, or rotated away): the
 * part of the first one already written is cut off again, so the file ends
 * with a whole line (stdout, maybe shared with stderr, is left alone). */
static void sink_cut_back(struct sink *k)
{
	if (k->partial && k->regular) {
		off_t end = lseek(k->fd, 0, SEEK_END);
		if (end >= (off_t)k->partial)
			(void)!ftruncate(k->fd, end - (off_t)k->partial);
	}
	k->partial = 0;
}

/* Lines in s[0..n); s may be NULL when n is 0 (no buffer yet). */
static size_t count_lines(const char *s, size_t n)
{
	size_t c = 0;
	if (!n)
		return 0; /* memchr(NULL, ...) is undefined even for 0 bytes */
	for (const char *p = s; p < s + n && (p = memchr(p, '\n', (size_t)(s + n - p))); p++)
		c++;
	return c;
}

struct output *output_open(const char *path, bool append)
{
	size_t n = strlen(path);
	struct output *o = calloc(1, sizeof *o + n + 1);
	if (!o)
		return NULL;
	memcpy(o->path, path, n + 1);
	if (strcmp(path, "-") == 0) {
		o->is_stdout = true;
		o->sink = &stdout_sink;
		/* never cut back: stdout may be a file stderr also writes to */
		stdout_sink.refs++;
		return o;
	}
	struct sink *k = calloc(1, sizeof *k);
	int fd = -1;
	if (k)
		fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0666);
	if (fd < 0) {
		int e = k ? errno : ENOMEM;
		free(k);
		free(o);
		errno = e;
		return NULL;
	}
	k->fd = fd;
	k->refs = 1;
	k->regular = is_regular(fd);
	o->sink = k;
	return o;
}

bool output_same_file(const struct output *a, const struct output *b)
{
	if (!a || !b || a->is_stdout || b->is_stdout)
		return false;
	struct stat sa, sb;
	return fstat(a->sink->fd, &sa) == 0 && fstat(b->sink->fd, &sb) == 0 &&
	       sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int output_close(struct output *o, uint64_t *lost)
{
	if (lost)
		*lost = 0;
	if (!o)
		return 0;
	struct sink *k = o->sink;
	if (k->len)
		sink_write(k);
	/* what the file never took: counted, and no half line left in it */
	if (k->len) {
		o->lost += count_lines(k->buf, k->len);
		sink_cut_back(k);
		k->len = 0;
	}
	/* lines were lost: the error that made them so (a run that wrote all in
	 * the end, after a full disk was cleared, lost nothing) */
	int r = o->lost ? -(k->first_err ? k->first_err : EIO) : 0;
	if (!o->is_stdout && close(k->fd) != 0 && r == 0 && errno != EINTR)
		r = -errno;
	if (lost)
		*lost = o->lost;
	if (--k->refs == 0) {
		free(k->buf);
		k->buf = NULL;
		k->cap = 0;
		if (k != &stdout_sink)
			free(k);
	}
	free(o);
	return r;
}

int output_reopen(struct output *o)
{
	if (!o)
		return 0;
	struct sink *k = o->sink;
	if (k->len)
		sink_write(k); /* to the file as it was, rotated or not */
	if (o->is_stdout)
		return 0;
	int fd = open(o->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
	if (fd < 0)
		return -errno;
	/* a line the old file took only part of goes whole to the new one */
	sink_cut_back(k);
	close(k->fd);
	k->fd = fd;
	k->regular = is_regular(fd);
	k->err = 0; /* a new file: told again if it refuses lines too */
	k->broken = false;
	if (k->len)
		sink_write(k);
	return 0;
}

int output_line(struct output *o, const char *s, size_t len)
{
	struct sink *k = o->sink;
	size_t need = len + 1;
	if (k->broken) {
		o->lost++;
		return -EPIPE;
	}
	if (k->len + need > k->cap && k->len)
		sink_write(k); /* make room */
	if (k->len + need > k->cap) {
		size_t cap = k->cap ? k->cap : OUTPUT_BUFFER;
		while (cap < k->len + need && cap < OUTPUT_PENDING_MAX)
			cap *= 2;
		if (cap > OUTPUT_PENDING_MAX)
			cap = OUTPUT_PENDING_MAX;
		char *nb = cap >= k->len + need ? realloc(k->buf, cap) : NULL;
		if (!nb) {
			/* the file refuses lines and OUTPUT_PENDING_MAX of them wait:
			 * this one is dropped whole, and counted */
			o->lost++;
			return -(k->err ? k->err : ENOMEM);
		}
		k->buf = nb;
		k->cap = cap;
	}
	memcpy(k->buf + k->len, s, len);
	k->buf[k->len + len] = '\n';
	k->len += need;
	o->lines++;
	if (k->len >= OUTPUT_BUFFER)
		sink_write(k);
	return 0;
}

int output_flush(struct output *o)
{
	if (!o)
		return 0;
	struct sink *k = o->sink;
	if (k->len)
		return sink_write(k);
	return 0;
}

int output_error(const struct output *o, size_t *waiting)
{
	if (waiting)
		*waiting = o->sink->len;
	return o->sink->err;
}

int output_first_error(const struct output *o)
{
	return o->sink->first_err ? o->sink->first_err : EIO;
}

const char *output_path(const struct output *o) { return o->path; }
uint64_t output_lines(const struct output *o) { return o->lines; }
uint64_t output_lost(const struct output *o)
{
	return o->lost + count_lines(o->sink->buf, o->sink->len);
}

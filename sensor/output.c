/* output.c — line outputs; see output.h for the contract. */
#include "output.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct output {
	FILE *f;
	bool is_stdout;
	int err;          /* first write error, as errno */
	uint64_t lines, lost;
	char path[];
};

struct output *output_open(const char *path, bool append)
{
	size_t n = strlen(path);
	struct output *o = calloc(1, sizeof *o + n + 1);
	if (!o)
		return NULL;
	memcpy(o->path, path, n + 1);
	if (strcmp(path, "-") == 0) {
		o->f = stdout;
		o->is_stdout = true;
	} else {
		o->f = fopen(path, append ? "a" : "w");
		if (!o->f) {
			int e = errno;
			free(o);
			errno = e;
			return NULL;
		}
	}
	return o;
}

bool output_same_file(const struct output *a, const struct output *b)
{
	if (!a || !b || a->is_stdout || b->is_stdout)
		return false;
	struct stat sa, sb;
	return fstat(fileno(a->f), &sa) == 0 && fstat(fileno(b->f), &sb) == 0 &&
	       sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int output_close(struct output *o)
{
	if (!o)
		return 0;
	int r = output_flush(o);
	if (!o->is_stdout && fclose(o->f) != 0 && r == 0)
		r = -errno;
	free(o);
	return r;
}

int output_reopen(struct output *o)
{
	if (!o)
		return 0;
	output_flush(o);
	if (o->is_stdout)
		return 0;
	FILE *f = fopen(o->path, "a");
	if (!f)
		return -errno;
	fclose(o->f); /* flushed above; an error there was counted */
	o->f = f;
	o->err = 0;
	return 0;
}

int output_line(struct output *o, const char *s, size_t len)
{
	if (o->err) {
		o->lost++;
		return -o->err;
	}
	if (fwrite(s, 1, len, o->f) != len || putc('\n', o->f) == EOF) {
		o->err = errno ? errno : EIO;
		o->lost++;
		return -o->err;
	}
	o->lines++;
	return 0;
}

int output_flush(struct output *o)
{
	if (!o)
		return 0;
	if (fflush(o->f) != 0 && !o->err)
		o->err = errno ? errno : EIO;
	return o->err ? -o->err : 0;
}

const char *output_path(const struct output *o) { return o->path; }
uint64_t output_lines(const struct output *o) { return o->lines; }
uint64_t output_lost(const struct output *o) { return o->lost; }

/* output.h — a line-oriented output: a file, or "-" for stdout.
 *
 * One JSON object per line for --records, --flows and --alerts-json. Only
 * whole lines reach the file: writes are buffered (OUTPUT_BUFFER) and
 * output_flush() pushes them out (the sensor calls it at every idle tick
 * and at exit). When the file refuses them (a full disk, EFBIG) the lines
 * wait in memory, up to OUTPUT_PENDING_MAX bytes, and every later write or
 * flush tries again, so a disk that is cleared in time loses nothing; past
 * the bound a new line is dropped whole and counted, as is every line once
 * a pipe has no reader (EPIPE). A line the file took only part of is
 * completed by the next write that works, or cut off again when the file is
 * left (closed, or reopened after rotation), so a file never holds half a
 * line. The "-" outputs share stdout, in the order their lines were
 * written. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OUTPUT_BUFFER      (16u * 1024)        /* written out when this much waits */
#define OUTPUT_PENDING_MAX (8u * 1024 * 1024)  /* waiting while the file refuses lines */

struct output;

/* Returns NULL with errno set. path "-" is stdout. append: add to what the
 * file holds (a live sensor's logs survive its restarts), else start it
 * afresh (the records of one capture file). */
struct output *output_open(const char *path, bool append);

/* Do a and b write to the same file (not stdout)? Two FILEs on one file
 * would interleave partial lines. */
bool output_same_file(const struct output *a, const struct output *b);
/* Flushes and closes (stdout is flushed, not closed). Returns 0 when every
 * line given reached the file, else -errno of the write error that lost
 * some, and how many in *lost (may be NULL). NULL is fine. */
int output_close(struct output *o, uint64_t *lost);

/* Append one line (a newline is added). Returns 0 when the line is taken
 * (written, or waiting), or -errno when it was dropped (counted). */
int output_line(struct output *o, const char *s, size_t len);
/* Write what waits. Returns 0, or -errno when lines still wait. */
int output_flush(struct output *o);
/* The error of the last write while lines wait (0: writing works), and the
 * bytes waiting; for telling when writing fails and when it works again. */
int output_error(const struct output *o, size_t *waiting);
/* The first write error there was (EIO if none was told), for a report. */
int output_first_error(const struct output *o);

/* For log rotation: what waits goes to the file as it was, then the path is
 * opened again, appending (a new file when it was moved away); lines the old
 * file did not take go to the new one. On failure the old file stays in use
 * and -errno is returned. stdout is only flushed. NULL is fine. */
int output_reopen(struct output *o);

const char *output_path(const struct output *o);
uint64_t output_lines(const struct output *o);
/* Lines dropped, and lines still waiting for a file that refuses them. */
uint64_t output_lost(const struct output *o);

/* output.h — a line-oriented output: a file, or "-" for stdout.
 *
 * One JSON object per line for --records, --flows and --alerts-json. Writes
 * are buffered; output_flush() pushes them out (the sensor calls it at every
 * flush tick and at exit). A write error is remembered and reported once by
 * the caller; later lines are counted as lost, never silently. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct output;

/* Returns NULL with errno set. path "-" is stdout. append: add to what the
 * file holds (a live sensor's logs survive its restarts), else start it
 * afresh (the records of one capture file). */
struct output *output_open(const char *path, bool append);

/* Do a and b write to the same file (not stdout)? Two FILEs on one file
 * would interleave partial lines. */
bool output_same_file(const struct output *a, const struct output *b);
/* Flushes and closes (stdout is flushed, not closed). NULL is fine. */
int output_close(struct output *o);

/* Append one line (a newline is added). Returns 0 or -errno. */
int output_line(struct output *o, const char *s, size_t len);
int output_flush(struct output *o);

/* For log rotation: what is buffered goes to the file as it was, then the
 * path is opened again, appending (a new file when it was moved away). On
 * failure the old file stays in use and -errno is returned. A remembered
 * write error is cleared: the new file gets the lines from now on. stdout
 * is only flushed. NULL is fine. */
int output_reopen(struct output *o);

const char *output_path(const struct output *o);
uint64_t output_lines(const struct output *o);
uint64_t output_lost(const struct output *o);

/* rfc2047.h — header text to UTF-8: RFC 2047 encoded-words and RFC 2231
 * parameter values, converted with glibc iconv.
 *
 * Pure functions on caller buffers; nothing is allocated per call except the
 * iconv descriptors, which are opened once per charset and cached for the
 * process lifetime (rfc2047_cleanup() closes them). Not thread-safe. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "utf8.h"

/* Longest charset name we accept from the wire (RFC 2978 names are <= 40). */
#define RFC2047_CHARSET_MAX 40

struct rfc2047_stats {
	unsigned long words;        /* encoded-words decoded */
	unsigned long bad_words;    /* malformed encoded-words left as written */
	unsigned long replaced;     /* bytes that could not be converted -> U+FFFD */
	unsigned long unknown_charset;
};

/* Decode an unfolded header value: encoded-words (B and Q, RFC 2231 §5
 * "charset*lang" accepted) become UTF-8; whitespace between two adjacent
 * encoded-words is dropped (RFC 2047 §6.2); the decoded bytes of adjacent
 * words in one charset are converted together, so a character split across
 * two words comes out whole; the base64 text of adjacent B words in one
 * charset is joined when a word ends inside a 4-character quantum (as
 * Thunderbird does), up to 4 KB of it. A malformed word (bad base64 or
 * "=XX") is left as written and counted in bad_words (RFC 2047 §6.3). Text
 * outside words is kept where it is valid UTF-8, decoded where it carries
 * ISO-2022-JP escapes (old Japanese mailers), and otherwise every bad byte
 * becomes U+FFFD.
 * Never drops a byte silently: every undecodable byte becomes one U+FFFD and
 * is counted in *stats (may be NULL).
 * Writes at most outsz-1 bytes plus NUL (nothing if outsz is 0), never
 * cutting a UTF-8 sequence: the output is always a prefix of the full
 * result. Returns the length written. */
size_t rfc2047_decode(const char *in, size_t inlen, char *out, size_t outsz,
		      struct rfc2047_stats *stats);

/* Convert bytes in `charset` to UTF-8 (iconv, with the aliases mail uses:
 * ISO-2022-JP (-1/-2/-3, CP5022x: NEC and IBM rows, JIS X 0201 kana),
 * Shift_JIS read as CP932, EUC-JP, UTF-8, ISO-8859-*, windows-125*, GBK and
 * GB2312 read as GB18030, Big5, EUC-KR read as CP949, KOI8-R/-U, US-ASCII).
 * Only these charsets reach iconv: names from the wire never select other
 * gconv modules. Invalid sequences become U+FFFD.
 * Same output contract as rfc2047_decode. Returns the length written, or -1
 * if the charset is unknown (out then holds the bytes with non-ASCII
 * replaced, counted in unknown_charset and replaced). */
long rfc2047_convert(const char *charset, const char *in, size_t inlen, char *out,
		     size_t outsz, struct rfc2047_stats *stats);

/* Copy `in` to `out` as valid UTF-8: valid sequences kept, every invalid byte
 * replaced by U+FFFD (counted in *replaced if not NULL). Same output contract. */
size_t utf8_sanitize(const char *in, size_t inlen, char *out, size_t outsz,
		     unsigned long *replaced);

/* Close cached iconv descriptors (for leak checkers). */
void rfc2047_cleanup(void);

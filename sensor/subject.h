/* subject.h — subject fingerprints: what groups one spam run together.
 *
 * Pure functions; no allocation. Input is the decoded UTF-8 subject. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SUBJECT_NORM_MAX 1024  /* bytes of normalised subject that are hashed */

struct subject_facts {
	uint64_t fingerprint;  /* hash of the normalised subject */
	uint64_t shape;        /* hash of (length bucket, scripts present): one
				* value for a whole random-subject flood */
	bool gibberish;        /* random-symbol subject (contact-form floods) */
	bool reply_prefix;     /* started with Re:/RE:/返信: ... (for fake_reply) */
	bool empty;            /* nothing left after normalisation */
};

/* Normalise: case-fold ASCII and full-width letters, strip reply/forward
 * prefixes repeatedly (Re, RE, Fwd, Fw, FW, AW, SV, Re[2], Re(2), 返信, 転送,
 * with ASCII or full-width colon), collapse runs of digits to one '0', collapse
 * whitespace (including U+3000) to one space, trim. Half-width katakana and
 * punctuation (U+FF61..U+FF9F) become full-width and a voiced or semi-voiced
 * sound mark joins the kana before it (ｶﾞ, カ U+3099: ガ), as NFKC does.
 * Invisible code points (Unicode Default_Ignorable: U+200B, U+00AD,
 * U+FEFF...) are dropped first.
 * Writes NUL-terminated output, at most outsz-1 bytes, never cutting a UTF-8
 * sequence; returns length.
 * If reply_prefix is not NULL it is set when a Re-like prefix was stripped. */
size_t subject_normalise(const char *utf8, size_t len, char *out, size_t outsz,
			 bool *reply_prefix);

/* All facts at once: normalise, hash (XXH3-64 with a fixed seed so every sensor
 * computes the same fingerprint), gibberish score, shape. */
void subject_analyse(const char *utf8, size_t len, struct subject_facts *out);

/* Random-symbol detector. Japanese, Chinese and ordinary English subjects are
 * not gibberish; strings like "#$%&'kdf!!?@@ZQ" are. The score is described
 * (with its measured error rates) in the "gibberish score" comment of
 * subject.c.
 * Reply prefixes are stripped first; the first 512 code points are scored. */
bool subject_is_gibberish(const char *utf8, size_t len);

/* Fingerprint as 16 lower-case hex digits plus NUL. */
void subject_hex(uint64_t v, char out[17]);

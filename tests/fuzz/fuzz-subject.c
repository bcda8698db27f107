/* fuzz-subject.c — libFuzzer target: subject_normalise(), subject_analyse(),
 * subject_is_gibberish() and subject_hex() on arbitrary bytes.
 *
 * Input format: byte 0 picks the output buffer size for subject_normalise
 * (outsz = byte0 % 64 for the small-buffer run; the main run uses
 * SUBJECT_NORM_MAX + 1, as subject_analyse does); the rest is the subject.
 *
 * Oracles (subject.h's contract): the output is NUL-terminated within outsz
 * and its length is returned; it is valid UTF-8 (never cutting a sequence)
 * when the input is; normalising is idempotent —
 * normalise(normalise(x)) == normalise(x) — and the reply flag is not set by
 * the second pass; subject_analyse() agrees with subject_normalise() on
 * `empty` and `reply_prefix`, and gives the same fingerprint for x and
 * normalise(x); subject_hex() writes 16 lower-case hex digits. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzzlib.h"
#include "rfc2047.h"
#include "subject.h"

#define OUT (SUBJECT_NORM_MAX + 1)

static void check_norm(const char *what, const char *in, size_t len, const char *out,
		       size_t n, size_t outsz)
{
	if (outsz == 0) {
		FUZZ_CHECK(n == 0);
		return;
	}
	FUZZ_CHECK(n < outsz);
	FUZZ_CHECK(out[n] == 0);
	/* U+0000 is valid UTF-8 and is kept; the sensor passes C strings */
	FUZZ_CHECK(memchr(in, 0, len) ? strlen(out) <= n : strlen(out) == n);
	if (utf8_valid(in, len) && !utf8_valid(out, n)) {
		fprintf(stderr, "%s: valid UTF-8 in, invalid out (outsz %zu): [%.*s] -> [%s]\n",
			what, outsz, (int)len, in, out);
		FUZZ_CHECK(!"valid UTF-8 out");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t small = data[0] % 64;
	/* An exact-size copy, so ASan sees a read past len. */
	size_t len = size - 1;
	char *in = malloc(len ? len : 1);
	memcpy(in, data + 1, len);

	char *out = malloc(OUT), *again = malloc(OUT), *tiny = malloc(64);
	bool reply = false, reply2 = false;
	size_t n = subject_normalise(in, len, out, OUT, &reply);
	check_norm("normalise", in, len, out, n, OUT);

	size_t n2 = subject_normalise(out, n, again, OUT, &reply2);
	check_norm("normalise twice", out, n, again, n2, OUT);
	if (n2 != n || memcmp(out, again, n) != 0) {
		fprintf(stderr, "normalise is not idempotent:\n in:   [%.*s]\n once: [%s]\n "
			"twice: [%s]\n", (int)len, in, out, again);
		FUZZ_CHECK(!"normalise(normalise(x)) == normalise(x)");
	}
	if (reply2) {
		fprintf(stderr, "a reply prefix survived normalisation: [%s]\n", out);
		FUZZ_CHECK(!"no reply prefix left after normalise");
	}

	size_t ns = subject_normalise(in, len, tiny, small, NULL);
	check_norm("normalise, small buffer", in, len, tiny, ns, small);

	struct subject_facts f, f2;
	subject_analyse(in, len, &f);
	FUZZ_CHECK(f.empty == (n == 0));
	FUZZ_CHECK(f.reply_prefix == reply);
	subject_analyse(out, n, &f2);
	FUZZ_CHECK(f2.fingerprint == f.fingerprint);
	(void)subject_is_gibberish(in, len);

	char hex[17];
	memset(hex, 'x', sizeof hex);
	subject_hex(f.fingerprint, hex);
	FUZZ_CHECK(hex[16] == 0 && strspn(hex, "0123456789abcdef") == 16);
	free(in);
	free(out);
	free(again);
	free(tiny);
	return 0;
}

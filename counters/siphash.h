/* siphash.h — SipHash-2-4 (Aumasson & Bernstein, 2012): a keyed 64-bit PRF
 * for short inputs. Used to pseudonymise account names: without the key,
 * a pseudonym cannot be linked to a name, even by hashing guesses. */
#pragma once

#include <stddef.h>
#include <stdint.h>

uint64_t siphash24(const uint8_t key[16], const void *data, size_t len);

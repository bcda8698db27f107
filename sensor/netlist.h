/* netlist.h — lists from the configuration: networks (CIDR) and domains.
 *
 * Parsed once at start into caller-owned structs; matching is allocation
 * free. A list is comma- or space-separated. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NETLIST_MAX 256     /* entries per list */
#define DOMAIN_MAX  253     /* RFC 1035 */

struct cidr {
	bool v6;
	uint8_t addr[16];
	uint8_t bits;
};

struct cidr_list {
	unsigned n;
	struct cidr e[NETLIST_MAX];
};

struct domain_list {
	unsigned n;
	char e[NETLIST_MAX][DOMAIN_MAX + 1];   /* lower-case, no leading dot */
};

/* "10.0.0.0/8, 2001:db8::/32 192.0.2.7" (a bare address is a /32 or /128).
 * Returns 0, or -EINVAL with the offending item in err. */
int cidr_list_parse(const char *text, struct cidr_list *out, char *err, size_t errsz);
bool cidr_list_match(const struct cidr_list *l, bool v6, const uint8_t addr[16]);

/* "pref.example.jp, city.example.jp": each matches itself and its subdomains. */
int domain_list_parse(const char *text, struct domain_list *out, char *err, size_t errsz);
bool domain_list_match(const struct domain_list *l, const char *domain);

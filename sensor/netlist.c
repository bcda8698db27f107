/* netlist.c — CIDR and domain lists; see netlist.h. */
#include "netlist.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Call fn for each item of a comma/space separated list. */
static int each_item(const char *text, int (*fn)(void *ctx, const char *item, char *err,
						  size_t errsz),
		     void *ctx, char *err, size_t errsz)
{
	const char *p = text ? text : "";
	while (*p) {
		while (*p == ',' || isspace((unsigned char)*p))
			p++;
		const char *e = p;
		while (*e && *e != ',' && !isspace((unsigned char)*e))
			e++;
		if (e > p) {
			char item[512];
			if ((size_t)(e - p) >= sizeof item) {
				snprintf(err, errsz, "'%.40s...' is too long", p);
				return -EINVAL;
			}
			memcpy(item, p, (size_t)(e - p));
			item[e - p] = 0;
			int r = fn(ctx, item, err, errsz);
			if (r < 0)
				return r;
		}
		p = e;
	}
	return 0;
}

static int add_cidr(void *ctx, const char *item, char *err, size_t errsz)
{
	struct cidr_list *l = ctx;
	if (l->n >= NETLIST_MAX) {
		snprintf(err, errsz, "more than %d networks", NETLIST_MAX);
		return -EINVAL;
	}
	struct cidr *c = &l->e[l->n];
	memset(c, 0, sizeof *c);
	char a[128];
	snprintf(a, sizeof a, "%s", item);
	char *slash = strchr(a, '/');
	if (slash)
		*slash = 0;
	if (inet_pton(AF_INET, a, c->addr) == 1) {
		c->v6 = false;
		c->bits = 32;
	} else if (inet_pton(AF_INET6, a, c->addr) == 1) {
		c->v6 = true;
		c->bits = 128;
	} else {
		snprintf(err, errsz, "'%s' is not an IPv4 or IPv6 network", item);
		return -EINVAL;
	}
	if (slash) {
		char *end;
		long bits = strtol(slash + 1, &end, 10);
		if (end == slash + 1 || *end || bits < 0 || bits > (c->v6 ? 128 : 32)) {
			snprintf(err, errsz, "'%s': bad prefix length", item);
			return -EINVAL;
		}
		c->bits = (uint8_t)bits;
	}
	l->n++;
	return 0;
}

int cidr_list_parse(const char *text, struct cidr_list *out, char *err, size_t errsz)
{
	out->n = 0;
	return each_item(text, add_cidr, out, err, errsz);
}

bool cidr_list_match(const struct cidr_list *l, bool v6, const uint8_t addr[16])
{
	for (unsigned i = 0; i < l->n; i++) {
		const struct cidr *c = &l->e[i];
		if (c->v6 != v6)
			continue;
		unsigned full = c->bits / 8, rest = c->bits % 8;
		if (memcmp(c->addr, addr, full))
			continue;
		if (rest) {
			uint8_t mask = (uint8_t)(0xff << (8 - rest));
			if ((c->addr[full] & mask) != (addr[full] & mask))
				continue;
		}
		return true;
	}
	return false;
}

static int add_domain(void *ctx, const char *item, char *err, size_t errsz)
{
	struct domain_list *l = ctx;
	if (l->n >= NETLIST_MAX) {
		snprintf(err, errsz, "more than %d domains", NETLIST_MAX);
		return -EINVAL;
	}
	const char *d = item[0] == '.' ? item + 1 : item;
	size_t n = strlen(d);
	/* "pref.example.jp." is the same domain, kept without the root's dot */
	while (n && d[n - 1] == '.')
		n--;
	if (n == 0 || n > DOMAIN_MAX) {
		snprintf(err, errsz, "'%s' is not a domain", item);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)d[i];
		if (!(isalnum(ch) || ch == '-' || ch == '.' || ch >= 0x80)) {
			snprintf(err, errsz, "'%s' is not a domain", item);
			return -EINVAL;
		}
		l->e[l->n][i] = (char)tolower(ch);
	}
	l->e[l->n][n] = 0;
	l->n++;
	return 0;
}

int domain_list_parse(const char *text, struct domain_list *out, char *err, size_t errsz)
{
	out->n = 0;
	return each_item(text, add_domain, out, err, errsz);
}

/* A trailing dot (the root, RFC 1034 §3.1: "x.jp." is x.jp) is ignored, as
 * address_domain_matches() does: RCPT TO:<a@pref.example.jp.> is local. */
bool domain_list_match(const struct domain_list *l, const char *domain)
{
	size_t dn = strlen(domain);
	while (dn && domain[dn - 1] == '.')
		dn--;
	for (unsigned i = 0; i < l->n; i++) {
		size_t en = strlen(l->e[i]);
		if (dn == en && !strncasecmp(domain, l->e[i], en))
			return true;
		if (dn > en && domain[dn - en - 1] == '.' &&
		    !strncasecmp(domain + dn - en, l->e[i], en))
			return true;
	}
	return false;
}

/* address.h — RFC 5322 address fields: display name and addr-spec.
 *
 * Pure functions on caller buffers; no allocation. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define ADDRESS_MAX 320   /* RFC 5321 §4.5.3.1: 64 local-part + @ + 255 domain */

/* Filled by address_parse_mailbox(); `domain` points into `addr`, so a
 * copy of the struct must set it again (address_domain(copy.addr)). */
struct mailbox {
	char display[512];        /* decoded UTF-8 display name, "" if none */
	char addr[ADDRESS_MAX + 1]; /* addr-spec, lower-cased, without <> */
	const char *domain;       /* points into addr after the last '@', "" if none */
};

/* Parse the first mailbox of a From-like header value (raw, unfolded; may
 * hold RFC 2047 words, comments, quoted strings, group syntax). Lenient the
 * way mail clients are: "Doe, John <j@d>" keeps the comma in the name,
 * encoded-words inside quotes are decoded, "addr (Name)" takes the comment
 * as the name. The address is the angle-addr that ends the mailbox: should
 * two come before a comma (`a <b@c> <d@e>`, not valid), the last, and the
 * text before it is the display name. A run of white space in the name is
 * one space. Over-long values are cut, never overflowed.
 * Returns true if an addr-spec was found. */
bool address_parse_mailbox(const char *value, size_t len, struct mailbox *out);

/* Extract an addr-spec from an SMTP path argument ("<a@b>", "a@b",
 * "<@relay:a@b>", "<>" ...), lower-cased, into out. Returns true if non-empty. */
bool address_from_path(const char *path, size_t len, char *out, size_t outsz);

/* The domain part of an addr-spec ("" if none). */
const char *address_domain(const char *addr);

/* Sender-specified routing: the local part of addr (all of it if there is
 * no '@') holds '@', '%' or '!' (user@elsewhere@domain, the percent hack
 * user%elsewhere@domain, the UUCP bang path elsewhere!user@domain), which
 * Postfix's reject_unauth_destination counts as relaying whatever domain
 * follows. If so, returns true with the next hop the sender named in
 * [*hop, *hop + *hoplen) (after the last '@' or '%' of the local part, else
 * before its first '!'; quotes trimmed; may be empty); a pointer into addr. */
bool address_routed(const char *addr, const char **hop, size_t *hoplen);

struct domain_list;   /* netlist.h */

/* Whether recipient addr is relayed when accepted, as Postfix's
 * reject_unauth_destination judges: its domain is not one of local (an
 * empty domain is not relayed), or it names a route (address_routed(), then
 * relayed whatever domain follows). *dest, *destlen: where it goes, the
 * next hop the sender named, else its domain; a pointer into addr. The one
 * judgement for the recipients a transaction keeps (detect.c's open_relay)
 * and those it cannot (smtp.c), so that the two always agree. */
bool address_relayed(const char *addr, const struct domain_list *local, const char **dest,
		     size_t *destlen);

/* Display-name spoofing (the Emotet pattern `helpdesk@org.jp <x@elsewhere>`):
 * if the display name of *mb holds an addr-spec whose domain differs
 * (case-insensitively) from mb->domain, copy that address to claimed
 * (lower case, at most claimedsz-1 bytes) and return true. Full-width forms
 * (＠, ｊｐ) and ideographic full stops read as ASCII. The claimed domain
 * ends at a space, punctuation or a symbol, ASCII or not (【a@x.jp】,
 * "a@x.jp　山田"); IDN letters stay in it (a@例え.jp). A domain equal to or
 * a subdomain of the other (info@x.jp <a@mail.x.jp>) is the same sender. */
bool address_display_spoof(const struct mailbox *mb, char *claimed, size_t claimedsz);

/* True if `domain` equals `suffix` or is a subdomain of it (case-insensitive). */
bool address_domain_matches(const char *domain, const char *suffix);

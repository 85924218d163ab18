/*
 * reference.c - image references as distribution/reference parses them
 * (ParseNormalizedNamed + splitDockerDomain), see
 * ../shared/reference/oci-distribution.md section 3.
 *
 * Deliberate differences from the Go package: the first component is only
 * taken as a registry when it is a valid host[:port] (Go would silently
 * re-read an invalid one as a path); digests must be sha256 with 64
 * lowercase hex digits, as the OCI image spec requires.
 */
#include "tagexport/reference.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "tagexport/buf.h"
#include "utf8_int.h"

#define DEFAULT_DOMAIN "docker.io"
#define LEGACY_DEFAULT_DOMAIN "index.docker.io"
#define DEFAULT_API_HOST "registry-1.docker.io"
#define OFFICIAL_PREFIX "library/"
#define NAME_MAX_LEN 255
#define TAG_MAX_LEN 128
/* Anything longer cannot be name (255) + ":" tag (128) + "@" digest. */
#define REF_INPUT_MAX 1024

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
	return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* [a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)* */
static bool valid_path_component(const char *s, size_t n)
{
	size_t i = 0;

	for (;;) {
		size_t start = i;

		while (i < n && is_lower_alnum(s[i]))
			i++;
		if (i == start)
			return false;
		if (i == n)
			return true;
		if (s[i] == '.') {
			i++;
		} else if (s[i] == '_') {
			i += (i + 1 < n && s[i + 1] == '_') ? 2 : 1;
		} else if (s[i] == '-') {
			while (i < n && s[i] == '-')
				i++;
		} else {
			return false;
		}
	}
}

static bool valid_path(const char *s)
{
	const char *slash;

	for (;;) {
		slash = strchr(s, '/');
		if (!valid_path_component(s, slash ? (size_t)(slash - s)
		                                   : strlen(s)))
			return false;
		if (!slash)
			return true;
		s = slash + 1;
	}
}

/* [a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9], joined by '.' */
static bool valid_domain_name(const char *s, size_t n)
{
	size_t i = 0;

	for (;;) {
		size_t start = i;

		while (i < n && s[i] != '.') {
			if (!is_alnum(s[i]) && s[i] != '-')
				return false;
			i++;
		}
		if (i == start || s[start] == '-' || s[i - 1] == '-')
			return false;
		if (i == n)
			return true;
		i++; /* '.' */
	}
}

static bool valid_port(const char *s, size_t n)
{
	size_t i;

	if (n == 0)
		return false;
	for (i = 0; i < n; i++)
		if (!is_digit(s[i]))
			return false;
	return true;
}

/*
 * host [":" port] where host is a domain name or "[" IPv6 "]".  On success
 * *hostlen is the length of the host part (brackets included).
 */
static bool split_domain(const char *s, size_t *hostlen)
{
	size_t n = strlen(s), i;
	const char *colon;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || close == s + 1)
			return false;
		for (i = 1; s + i < close; i++)
			if (!is_hex(s[i]) && s[i] != ':')
				return false;
		*hostlen = (size_t)(close - s) + 1;
		if (close[1] == '\0')
			return true;
		return close[1] == ':' &&
		       valid_port(close + 2, n - *hostlen - 1);
	}
	colon = strchr(s, ':');
	*hostlen = colon ? (size_t)(colon - s) : n;
	if (!valid_domain_name(s, *hostlen))
		return false;
	return !colon || valid_port(colon + 1, n - *hostlen - 1);
}

bool te_ref_tag_valid(const char *s)
{
	size_t i;

	if (!s || !s[0] || s[0] == '.' || s[0] == '-')
		return false;
	for (i = 0; s[i]; i++) {
		if (i >= TAG_MAX_LEN)
			return false;
		if (!is_alnum(s[i]) && s[i] != '_' && s[i] != '.' &&
		    s[i] != '-')
			return false;
	}
	return true;
}

/* [A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)* */
static bool valid_digest_algorithm(const char *s, size_t n)
{
	size_t i = 0;

	for (;;) {
		if (i >= n || !is_alnum(s[i]) || is_digit(s[i]))
			return false;
		while (i < n && is_alnum(s[i]))
			i++;
		if (i == n)
			return true;
		if (!strchr("-_+.", s[i]))
			return false;
		i++;
	}
}

static int check_digest(const char *d, te_error *err)
{
	const char *colon = strchr(d, ':');
	size_t i;

	if (!colon || !valid_digest_algorithm(d, (size_t)(colon - d)))
		return te_error_set(err, TE_EINVALID, "invalid digest format");
	if ((size_t)(colon - d) != 6 || strncmp(d, "sha256", 6) != 0)
		return te_error_set(err, TE_EINVALID,
		                    "unsupported digest algorithm");
	for (i = 0; colon[1 + i]; i++)
		if (!is_digit(colon[1 + i]) &&
		    !(colon[1 + i] >= 'a' && colon[1 + i] <= 'f'))
			return te_error_set(err, TE_EINVALID,
			                    "invalid sha256 digest: want 64 "
			                    "lowercase hex digits");
	if (i != 64)
		return te_error_set(err, TE_EINVALID,
		                    "invalid sha256 digest: want 64 lowercase "
		                    "hex digits");
	return 0;
}

static bool is_64_hex(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (!is_digit(s[i]) && !(s[i] >= 'a' && s[i] <= 'f'))
			return false;
	return i == 64;
}

static bool has_upper(const char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			return true;
	return false;
}

static bool streq_nocase(const char *a, const char *b)
{
	for (; *a && *b; a++, b++) {
		char x = *a, y = *b;

		if (x >= 'A' && x <= 'Z')
			x = (char)(x - 'A' + 'a');
		if (y >= 'A' && y <= 'Z')
			y = (char)(y - 'A' + 'a');
		if (x != y)
			return false;
	}
	return *a == *b;
}

void te_ref_dispose(te_ref *ref)
{
	if (!ref)
		return;
	free(ref->domain);
	free(ref->path);
	free(ref->tag);
	free(ref->digest);
	ref->domain = ref->path = ref->tag = ref->digest = NULL;
}

/*
 * splitDockerDomain: the first component is a registry when it contains
 * '.' or ':', is "localhost", or has an uppercase letter.  Fills
 * ref->domain and returns the remainder (a pointer into s) or NULL on OOM.
 */
static const char *split_docker_domain(te_ref *ref, const char *s,
                                       te_error *err)
{
	const char *slash = strchr(s, '/');
	const char *rest = s;
	size_t n = slash ? (size_t)(slash - s) : 0;
	bool is_domain = false;

	if (slash) {
		size_t i;

		is_domain = memchr(s, '.', n) || memchr(s, ':', n) ||
		            (n == 9 && strncmp(s, "localhost", 9) == 0);
		for (i = 0; i < n && !is_domain; i++)
			if (s[i] >= 'A' && s[i] <= 'Z')
				is_domain = true;
	}
	if (is_domain) {
		ref->domain = strndup(s, n);
		rest = slash + 1;
	} else {
		ref->domain = strdup(DEFAULT_DOMAIN);
	}
	if (ref->domain && strcmp(ref->domain, LEGACY_DEFAULT_DOMAIN) == 0) {
		free(ref->domain);
		ref->domain = strdup(DEFAULT_DOMAIN);
	}
	if (!ref->domain) {
		te_error_set(err, TE_ENOMEM, "out of memory");
		return NULL;
	}
	return rest;
}

static int parse(te_ref *out, const char *s, bool repo_only, te_error *err)
{
	te_ref ref = TE_REF_INIT;
	te_buf path = TE_BUF_INIT(REF_INPUT_MAX + sizeof(OFFICIAL_PREFIX));
	const char *rest, *at, *colon;
	size_t hostlen, namelen;
	char q[300];
	int rc = 0;

	if (!s)
		s = "";
	te__goquote(q, sizeof(q), s);
	if (!*s) {
		rc = te_error_set(err, TE_EINVALID,
		                  "invalid reference \"\": repository name "
		                  "must have at least one component");
		goto done;
	}
	if (strlen(s) > REF_INPUT_MAX) {
		rc = te_error_set(err, TE_EINVALID,
		                  "invalid reference %s: longer than %d bytes",
		                  q, REF_INPUT_MAX);
		goto done;
	}
	if (is_64_hex(s)) {
		rc = te_error_set(err, TE_EINVALID,
		                  "invalid reference %s: 64-byte hexadecimal "
		                  "strings are ambiguous with image ids",
		                  q);
		goto done;
	}
	if (!(rest = split_docker_domain(&ref, s, err))) {
		rc = err ? err->code : TE_ENOMEM;
		goto done;
	}
	if (!split_domain(ref.domain, &hostlen)) {
		rc = te_error_set(err, TE_EINVALID,
		                  "invalid reference %s: invalid registry "
		                  "host",
		                  q);
		goto done;
	}
	at = strchr(rest, '@');
	colon = memchr(rest, ':', at ? (size_t)(at - rest) : strlen(rest));
	if (repo_only && (at || colon)) {
		rc = te_error_set(
		    err, TE_EINVALID,
		    "invalid repository %s: must not contain a tag or "
		    "digest%s",
		    q,
		    strchr(s, '/') ? ""
		                   : " (a registry needs a repository "
		                     "path, e.g. localhost:5000/name)");
		goto done;
	}
	if (strcmp(ref.domain, DEFAULT_DOMAIN) == 0 && !strchr(rest, '/'))
		rc = te_buf_puts(&path, OFFICIAL_PREFIX, err);
	if (rc == 0)
		rc = te_buf_put(&path, rest,
		                colon ? (size_t)(colon - rest)
		                : at  ? (size_t)(at - rest)
		                      : strlen(rest),
		                err);
	if (rc < 0)
		goto done;
	if (path.len == 0) {
		rc = te_error_set(err, TE_EINVALID,
		                  "invalid reference %s: missing repository "
		                  "path",
		                  q);
		goto done;
	}
	if (has_upper(path.ptr)) {
		rc = te_error_set(err, TE_EINVALID,
		                  "invalid reference %s: repository path "
		                  "must be lowercase",
		                  q);
		goto done;
	}
	if (!valid_path(path.ptr)) {
		rc = te_error_set(err, TE_EINVALID,
		                  "invalid reference %s: invalid repository "
		                  "path (components are [a-z0-9] separated "
		                  "by '.', '_', '__' or dashes, joined by '/')",
		                  q);
		goto done;
	}
	namelen = strlen(ref.domain) + 1 + path.len;
	if (namelen > NAME_MAX_LEN) {
		rc = te_error_set(err, TE_EINVALID,
		                  "invalid reference %s: repository name "
		                  "must not be more than %d characters",
		                  q, NAME_MAX_LEN);
		goto done;
	}
	if (colon) {
		size_t tlen = at ? (size_t)(at - colon - 1) : strlen(colon + 1);

		if (!(ref.tag = strndup(colon + 1, tlen))) {
			rc = te_error_set(err, TE_ENOMEM, "out of memory");
			goto done;
		}
		if (!te_ref_tag_valid(ref.tag)) {
			rc = te_error_set(err, TE_EINVALID,
			                  "invalid reference %s: invalid tag "
			                  "(want [A-Za-z0-9_][A-Za-z0-9_.-]"
			                  "{0,127})",
			                  q);
			goto done;
		}
	}
	if (at) {
		if ((rc = check_digest(at + 1, err)) < 0) {
			te_error_wrap(err, "invalid reference %s", q);
			goto done;
		}
		if (!(ref.digest = strdup(at + 1))) {
			rc = te_error_set(err, TE_ENOMEM, "out of memory");
			goto done;
		}
	}
	if (!repo_only && !ref.tag && !ref.digest &&
	    !(ref.tag = strdup("latest"))) {
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
		goto done;
	}
	if (!(ref.path = te_buf_detach(&path))) {
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
		goto done;
	}
	*out = ref;
	ref.domain = ref.path = ref.tag = ref.digest = NULL;
done:
	te_ref_dispose(&ref);
	te_buf_dispose(&path);
	return rc;
}

int te_ref_parse(te_ref *out, const char *s, te_error *err)
{
	return parse(out, s, false, err);
}

int te_ref_parse_repo(te_ref *out, const char *s, te_error *err)
{
	return parse(out, s, true, err);
}

const char *te_ref_api_host(const te_ref *ref)
{
	if (ref->domain && strcmp(ref->domain, DEFAULT_DOMAIN) == 0)
		return DEFAULT_API_HOST;
	return ref->domain;
}

bool te_ref_host_is_loopback(const char *domain)
{
	char host[64];
	size_t hostlen, n;
	struct in6_addr a6;
	struct in_addr a4;

	if (!domain || !split_domain(domain, &hostlen))
		return false;
	if (domain[0] == '[') {
		n = hostlen - 2;
		if (n >= sizeof(host))
			return false;
		memcpy(host, domain + 1, n);
		host[n] = '\0';
		return inet_pton(AF_INET6, host, &a6) == 1 &&
		       memcmp(&a6, &in6addr_loopback, sizeof(a6)) == 0;
	}
	if (hostlen >= sizeof(host))
		return false;
	memcpy(host, domain, hostlen);
	host[hostlen] = '\0';
	if (streq_nocase(host, "localhost"))
		return true;
	return inet_pton(AF_INET, host, &a4) == 1 &&
	       (ntohl(a4.s_addr) >> 24) == 127;
}

char *te_ref_format(const te_ref *ref)
{
	te_buf b = TE_BUF_INIT(4096);
	int rc;

	if (!ref || !ref->domain || !ref->path)
		return NULL;
	rc = te_buf_printf(&b, NULL, "%s/%s", ref->domain, ref->path);
	if (rc == 0 && ref->tag)
		rc = te_buf_printf(&b, NULL, ":%s", ref->tag);
	if (rc == 0 && ref->digest)
		rc = te_buf_printf(&b, NULL, "@%s", ref->digest);
	if (rc < 0) {
		te_buf_dispose(&b);
		return NULL;
	}
	return te_buf_detach(&b);
}

/*
 * semver.c - semantic version parsing, precedence and the floating-tag
 * rule of tag templates.  Pure functions: no allocation, no I/O.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "tagexport/semver.h"

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_ident_char(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') ||
	       (c >= 'A' && c <= 'Z') || c == '-';
}

/* Parse a numeric part at *p: no leading zero, no overflow. */
static int parse_num(uint64_t *out, const char **p, const char *what,
                     te_error *err)
{
	const char *s = *p;
	uint64_t v = 0;

	if (!is_digit(*s))
		return te_error_set(err, TE_EINVALID,
		                    "semver: %s version is not a number", what);
	if (s[0] == '0' && is_digit(s[1]))
		return te_error_set(err, TE_EINVALID,
		                    "semver: %s version has a leading zero",
		                    what);
	for (; is_digit(*s); s++) {
		unsigned d = (unsigned)(*s - '0');

		if (v > (UINT64_MAX - d) / 10)
			return te_error_set(err, TE_EINVALID,
			                    "semver: %s version is too large",
			                    what);
		v = v * 10 + d;
	}
	*out = v;
	*p = s;
	return 0;
}

/*
 * Copy the dot-separated identifiers at *p (up to '+' for a pre-release or
 * the end) into out, checking each one.
 */
static int parse_idents(char out[TE_SEMVER_STR_MAX], const char **p,
                        bool prerelease, te_error *err)
{
	const char *what = prerelease ? "pre-release" : "build metadata";
	const char *s = *p;
	size_t n = 0;

	for (;;) {
		const char *start = s;
		bool numeric = true;

		while (is_ident_char(*s)) {
			if (!is_digit(*s))
				numeric = false;
			s++;
		}
		if (s == start)
			return te_error_set(err, TE_EINVALID,
			                    "semver: empty or invalid %s "
			                    "identifier",
			                    what);
		if (prerelease && numeric && start[0] == '0' && s - start > 1)
			return te_error_set(err, TE_EINVALID,
			                    "semver: numeric pre-release "
			                    "identifier has a leading zero");
		if (*s != '.')
			break;
		s++;
	}
	n = (size_t)(s - *p);
	if (n >= TE_SEMVER_STR_MAX)
		return te_error_set(err, TE_EINVALID, "semver: %s too long",
		                    what);
	memcpy(out, *p, n);
	out[n] = '\0';
	*p = s;
	return 0;
}

int te_semver_parse(te_semver *out, const char *tag, te_error *err)
{
	const char *p = tag;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!tag)
		return te_error_set(err, TE_EINVALID, "semver: no tag");
	if (strlen(tag) >= TE_SEMVER_STR_MAX)
		return te_error_set(err, TE_EINVALID, "semver: tag too long");
	if (*p == 'v')
		p++;
	rc = parse_num(&out->major, &p, "major", err);
	if (rc < 0)
		goto done;
	if (*p++ != '.') {
		rc = te_error_set(err, TE_EINVALID,
		                  "semver: expected major.minor.patch");
		goto done;
	}
	rc = parse_num(&out->minor, &p, "minor", err);
	if (rc < 0)
		goto done;
	if (*p++ != '.') {
		rc = te_error_set(err, TE_EINVALID,
		                  "semver: expected major.minor.patch");
		goto done;
	}
	rc = parse_num(&out->patch, &p, "patch", err);
	if (rc < 0)
		goto done;
	if (*p == '-') {
		p++;
		rc = parse_idents(out->pre, &p, true, err);
		if (rc < 0)
			goto done;
	}
	if (*p == '+') {
		p++;
		rc = parse_idents(out->build, &p, false, err);
		if (rc < 0)
			goto done;
	}
	if (*p != '\0')
		rc = te_error_set(err, TE_EINVALID,
		                  "semver: unexpected character after version");
done:
	if (rc < 0)
		memset(out, 0, sizeof(*out));
	return rc;
}

bool te_semver_is_valid(const char *tag)
{
	te_error err = TE_ERROR_INIT;
	te_semver v;

	return te_semver_parse(&v, tag, &err) == 0;
}

static int cmp_u64(uint64_t a, uint64_t b)
{
	return a < b ? -1 : a > b ? 1 : 0;
}

/* Compare two pre-release identifiers of length an and bn. */
static int cmp_ident(const char *a, size_t an, const char *b, size_t bn)
{
	bool anum = true, bnum = true;
	size_t i;
	int c;

	for (i = 0; i < an; i++)
		if (!is_digit(a[i]))
			anum = false;
	for (i = 0; i < bn; i++)
		if (!is_digit(b[i]))
			bnum = false;
	if (anum && bnum) {
		/* No leading zeros: a longer number is a larger one. */
		if (an != bn)
			return an < bn ? -1 : 1;
		c = memcmp(a, b, an);
		return c < 0 ? -1 : c > 0 ? 1 : 0;
	}
	if (anum != bnum)
		return anum ? -1 : 1;
	c = memcmp(a, b, an < bn ? an : bn);
	if (c != 0)
		return c < 0 ? -1 : 1;
	return an < bn ? -1 : an > bn ? 1 : 0;
}

int te_semver_compare(const te_semver *a, const te_semver *b)
{
	const char *pa = a->pre, *pb = b->pre;
	int c;

	c = cmp_u64(a->major, b->major);
	if (c == 0)
		c = cmp_u64(a->minor, b->minor);
	if (c == 0)
		c = cmp_u64(a->patch, b->patch);
	if (c != 0)
		return c;
	if (!*pa || !*pb)
		return (*pa ? -1 : 0) + (*pb ? 1 : 0);
	for (;;) {
		size_t an = strcspn(pa, "."), bn = strcspn(pb, ".");

		c = cmp_ident(pa, an, pb, bn);
		if (c != 0)
			return c;
		pa += an;
		pb += bn;
		if (!*pa || !*pb)
			return (*pa ? 1 : 0) - (*pb ? 1 : 0);
		pa++;
		pb++;
	}
}

unsigned int te_semver_template_uses(const char *tpl)
{
	unsigned int uses = 0;

	if (!tpl)
		return 0;
	if (strstr(tpl, "%semver%"))
		uses |= TE_SEMVER_USES_FULL;
	if (strstr(tpl, "%semver_major%"))
		uses |= TE_SEMVER_USES_MAJOR;
	if (strstr(tpl, "%semver_minor%"))
		uses |= TE_SEMVER_USES_MINOR;
	if (strstr(tpl, "%semver_patch%"))
		uses |= TE_SEMVER_USES_PATCH;
	return uses;
}

int te_semver_template_applies(bool *applies, const char *tpl, const char *tag,
                               const char *const *all_repo_tags, size_t n,
                               te_error *err)
{
	te_semver self, other;
	unsigned int uses;
	size_t i;

	*applies = false;
	if (!tpl || !tag)
		return te_error_set(err, TE_EINVALID,
		                    "semver: template and tag are required");
	uses = te_semver_template_uses(tpl);
	if (uses == 0) {
		*applies = true;
		return 0;
	}
	if (!te_semver_is_valid(tag))
		return 0;
	/* te_semver_is_valid just succeeded: this cannot fail. */
	(void)te_semver_parse(&self, tag, err);
	if (uses & (TE_SEMVER_USES_FULL | TE_SEMVER_USES_PATCH)) {
		*applies = true;
		return 0;
	}
	if (self.pre[0])
		return 0;
	for (i = 0; i < n; i++) {
		te_error ignored = TE_ERROR_INIT;

		if (!all_repo_tags[i] ||
		    te_semver_parse(&other, all_repo_tags[i], &ignored) < 0)
			continue;
		if (other.pre[0] || other.major != self.major)
			continue;
		if ((uses & TE_SEMVER_USES_MINOR) && other.minor != self.minor)
			continue;
		if (te_semver_compare(&other, &self) > 0)
			return 0;
	}
	*applies = true;
	return 0;
}

int te_semver_vars_get(te_semver_vars *out, const char *tag, te_error *err)
{
	te_semver v;
	char *plus;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = te_semver_parse(&v, tag, err);
	if (rc < 0)
		return rc;
	/* Parsed, so shorter than TE_SEMVER_STR_MAX. */
	snprintf(out->semver, sizeof(out->semver), "%s",
	         tag[0] == 'v' ? tag + 1 : tag);
	plus = strchr(out->semver, '+');
	if (plus)
		*plus = '_';
	snprintf(out->major, sizeof(out->major), "%llu",
	         (unsigned long long)v.major);
	snprintf(out->minor, sizeof(out->minor), "%llu",
	         (unsigned long long)v.minor);
	snprintf(out->patch, sizeof(out->patch), "%llu",
	         (unsigned long long)v.patch);
	return 0;
}

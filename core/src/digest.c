/*
 * digest.c - content-based tags of Dockerfile images.
 *
 * The tag is SHA3-224 over fields joined with ":::" (werf's Sha3_224Hash).
 * Fields, in this order (TE_DIGEST_VERSION first so that any change to
 * this list can bump it and never collide with older tags):
 *
 *   1. "tagexport-content-v1"
 *   2. platform ("" when native)
 *   3. target ("" when the last stage)
 *   4. "args:<n>", then each build arg "NAME=VALUE" sorted
 *   5. "bases:<n>", then each base image reference in Dockerfile order
 *   6. "dockerfile:" + sha256 hex of the Dockerfile bytes
 *   7. "files:<n>", then for each kept context file, sorted by path:
 *      "<path>\0<octal git mode>\0<blob id>"
 *   8. "urls:<n>", then each ADD URL source in Dockerfile order
 *   9. only when werf.yaml sets one: "cacheVersion", then meta
 *      build.cacheVersion and the image's cacheVersion ("" if unset)
 *  10. only when the image has dependencies: "imports:<n>", then for each
 *      import in file order "<image>\0<type>\0<targetBuildArg>" (the
 *      dependencies' own tags are added by the plan, plan.h)
 *  11. "imagespec:" + te_imagespec_serialize, when werf.yaml has one
 *  12. "network:<mode>", when werf.yaml sets network
 *  13. "addhosts:<n>", then each "host:ip", when werf.yaml has addHost
 *
 * Fields 9 to 13 are absent for images without them, so their tags are
 * what they were before these keys were honoured.
 * Counts in front of lists keep a value holding ":::" from being read as
 * a field boundary.  Kept files: the Dockerfile, the .dockerignore in use,
 * every context file a COPY/ADD source matches that .dockerignore does not
 * exclude, plus (transitively) in-context targets of kept symlinks, since
 * a COPY of a symlink copies what it points at.
 */
#include "tagexport/digest.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "tagexport/dockerfile.h"
#include "tagexport/ignore.h"

#define TE_DIGEST_VERSION "tagexport-content-v1"
#define TE_DOCKERFILE_MAX (1024 * 1024)
#define TE_DOCKERIGNORE_MAX (1024 * 1024)
#define TE_LINK_MAX 4096

struct te_digest {
	EVP_MD_CTX *ctx;
	size_t nfields;
};

int te_digest_new(te_digest **out, te_error *err)
{
	te_digest *d;

	*out = NULL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	d->ctx = EVP_MD_CTX_new();
	if (!d->ctx || EVP_DigestInit_ex(d->ctx, EVP_sha3_224(), NULL) != 1) {
		te_digest_free(d);
		return te_error_set(err, TE_ERROR,
		                    "cannot initialise sha3-224");
	}
	*out = d;
	return 0;
}

int te_digest_field(te_digest *d, const void *data, size_t len, te_error *err)
{
	if ((d->nfields && EVP_DigestUpdate(d->ctx, ":::", 3) != 1) ||
	    (len && EVP_DigestUpdate(d->ctx, data, len) != 1))
		return te_error_set(err, TE_ERROR, "sha3-224 update failed");
	d->nfields++;
	return 0;
}

static void hex(char *out, const unsigned char *md, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[md[i] >> 4];
		out[2 * i + 1] = digits[md[i] & 15];
	}
	out[2 * n] = '\0';
}

int te_digest_final(char out[TE_CONTENT_TAG_LEN + 1], te_digest *d,
                    te_error *err)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (EVP_DigestFinal_ex(d->ctx, md, &n) != 1 ||
	    n * 2 != TE_CONTENT_TAG_LEN)
		return te_error_set(err, TE_ERROR, "sha3-224 final failed");
	hex(out, md, n);
	return 0;
}

void te_digest_free(te_digest *d)
{
	if (!d)
		return;
	EVP_MD_CTX_free(d->ctx);
	free(d);
}

void te_image_inputs_dispose(te_image_inputs *in)
{
	if (!in)
		return;
	free(in->context_dir);
	free(in->dockerfile_path);
	te_strvec_dispose(&in->files);
	te_strvec_dispose(&in->bases);
	in->context_dir = NULL;
	in->dockerfile_path = NULL;
	in->content_tag[0] = '\0';
}

/* filepath.Clean for a relative path, ".." refused; "" for the root. */
static int clean_rel(char **out, const char *path, const char *what,
                     te_error *err)
{
	te_buf b = TE_BUF_INIT(4096);
	const char *p = path ? path : "", *end;
	size_t n;
	int rc = 0;

	*out = NULL;
	if (*p == '/')
		return te_error_set(err, TE_EINVALID,
		                    "%s '%s' must be relative", what, p);
	while (*p) {
		end = strchr(p, '/');
		n = end ? (size_t)(end - p) : strlen(p);
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			rc = te_error_set(err, TE_EINVALID,
			                  "%s '%s' must not contain '..'", what,
			                  path);
			goto done;
		}
		if (n && !(n == 1 && p[0] == '.')) {
			if (b.len && (rc = te_buf_put(&b, "/", 1, err)) < 0)
				goto done;
			if ((rc = te_buf_put(&b, p, n, err)) < 0)
				goto done;
		}
		p += n;
		if (*p == '/')
			p++;
	}
	*out = te_buf_detach(&b);
	if (!*out)
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
done:
	te_buf_dispose(&b);
	return rc;
}

static int join(char **out, const char *a, const char *b, te_error *err)
{
	te_buf buf = TE_BUF_INIT(8192);
	int rc;

	if ((rc = te_buf_puts(&buf, a, err)) < 0 ||
	    (*a && *b && (rc = te_buf_put(&buf, "/", 1, err)) < 0) ||
	    (rc = te_buf_puts(&buf, b, err)) < 0) {
		te_buf_dispose(&buf);
		return rc;
	}
	*out = te_buf_detach(&buf);
	return *out ? 0 : te_error_set(err, TE_ENOMEM, "out of memory");
}

struct ctx_entry {
	char *path;
	char *oid;
	unsigned int mode;
	bool keep;
};

struct ctx_list {
	struct ctx_entry *items;
	size_t count, cap;
	te_error *err;
};

static int collect(const te_gitsrc_entry *ent, void *payload)
{
	struct ctx_list *l = payload;
	struct ctx_entry *e;

	if (l->count == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct ctx_entry *p = realloc(l->items, cap * sizeof(*p));

		if (!p)
			return te_error_set(l->err, TE_ENOMEM, "out of memory");
		l->items = p;
		l->cap = cap;
	}
	e = &l->items[l->count];
	e->path = strdup(ent->path);
	e->oid = strdup(ent->oid);
	e->mode = ent->mode;
	e->keep = false;
	if (!e->path || !e->oid) {
		free(e->path);
		free(e->oid);
		return te_error_set(l->err, TE_ENOMEM, "out of memory");
	}
	l->count++;
	return 0;
}

static void ctx_list_dispose(struct ctx_list *l)
{
	size_t i;

	for (i = 0; i < l->count; i++) {
		free(l->items[i].path);
		free(l->items[i].oid);
	}
	free(l->items);
}

/*
 * Resolve symlink target lexically from the link's directory; false when
 * it is absolute or leaves the context.  out gets the cleaned path.
 */
static bool resolve_link(te_buf *out, const char *link, const char *target,
                         size_t tlen)
{
	te_error err = TE_ERROR_INIT;
	const char *slash = strrchr(link, '/');
	size_t i = 0, n;

	te_buf_clear(out);
	if (!tlen || target[0] == '/' || memchr(target, '\0', tlen))
		return false;
	if (slash && te_buf_put(out, link, (size_t)(slash - link), &err) < 0)
		return false;
	while (i < tlen) {
		n = 0;
		while (i + n < tlen && target[i + n] != '/')
			n++;
		if (n == 2 && target[i] == '.' && target[i + 1] == '.') {
			char *cut;

			if (!out->len)
				return false;
			cut = strrchr(out->ptr, '/');
			out->len = cut ? (size_t)(cut - out->ptr) : 0;
			out->ptr[out->len] = '\0';
		} else if (n && !(n == 1 && target[i] == '.')) {
			if (out->len && te_buf_put(out, "/", 1, &err) < 0)
				return false;
			if (te_buf_put(out, target + i, n, &err) < 0)
				return false;
		}
		i += n + 1;
	}
	return true;
}

/* Keep what kept symlinks point at, until nothing changes. */
static int keep_link_targets(struct ctx_list *l, te_gitsrc *src, te_error *err)
{
	te_buf target = TE_BUF_INIT(TE_LINK_MAX);
	te_buf resolved = TE_BUF_INIT(8192);
	bool changed = true;
	bool *done_link = NULL;
	size_t i, j, rounds = 0;
	int rc = 0;

	done_link = calloc(l->count ? l->count : 1, sizeof(*done_link));
	if (!done_link)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	while (changed && rounds++ < 64) {
		changed = false;
		for (i = 0; i < l->count; i++) {
			struct ctx_entry *e = &l->items[i];

			if (!e->keep || e->mode != 0120000u || done_link[i])
				continue;
			done_link[i] = true;
			te_buf_clear(&target);
			if ((rc = te_gitsrc_read_blob(&target, src, e->oid,
			                              err)) < 0)
				goto done;
			if (!resolve_link(&resolved, e->path, target.ptr,
			                  target.len))
				continue;
			for (j = 0; j < l->count; j++) {
				const char *p = l->items[j].path;

				if (l->items[j].keep)
					continue;
				if (resolved.len == 0 ||
				    strcmp(p, resolved.ptr) == 0 ||
				    (strncmp(p, resolved.ptr, resolved.len) ==
				         0 &&
				     p[resolved.len] == '/')) {
					l->items[j].keep = true;
					changed = true;
				}
			}
		}
	}
done:
	free(done_link);
	te_buf_dispose(&target);
	te_buf_dispose(&resolved);
	return rc;
}

static int field_str(te_digest *d, const char *s, te_error *err)
{
	return te_digest_field(d, s, strlen(s), err);
}

static int field_count(te_digest *d, const char *name, size_t n, te_error *err)
{
	te_buf b = TE_BUF_INIT(64);
	int rc;

	if ((rc = te_buf_printf(&b, err, "%s:%zu", name, n)) == 0)
		rc = te_digest_field(d, b.ptr, b.len, err);
	te_buf_dispose(&b);
	return rc;
}

static bool is_url(const char *s)
{
	return strstr(s, "://") != NULL;
}

static int read_optional(te_buf *out, bool *found, te_gitsrc *src,
                         const char *commit, const char *path, te_error *err)
{
	int rc = te_gitsrc_read_file(out, src, commit, path, err);

	*found = rc == 0;
	if (rc == TE_ENOTFOUND) {
		te_error_clear(err);
		return 0;
	}
	return rc;
}

/* Fields 9 and 10 (see the top of this file). */
static int hash_werf_keys(te_digest *d, const te_image_config *img, te_buf *rec,
                          te_error *err)
{
	size_t i, j, n = 0;
	int rc;

	if (img->cache_version || img->build_cache_version) {
		if ((rc = field_str(d, "cacheVersion", err)) < 0 ||
		    (rc = field_str(d,
		                    img->build_cache_version
		                        ? img->build_cache_version
		                        : "",
		                    err)) < 0 ||
		    (rc = field_str(
		         d, img->cache_version ? img->cache_version : "",
		         err)) < 0)
			return rc;
	}
	if (!img->ndeps)
		return 0;
	for (i = 0; i < img->ndeps; i++)
		n += img->deps[i].nimports;
	if ((rc = field_count(d, "imports", n, err)) < 0)
		return rc;
	for (i = 0; i < img->ndeps; i++) {
		for (j = 0; j < img->deps[i].nimports; j++) {
			const te_image_import *imp = &img->deps[i].imports[j];

			te_buf_clear(rec);
			if ((rc = te_buf_puts(rec, img->deps[i].image, err)) <
			        0 ||
			    (rc = te_buf_put(rec, "", 1, err)) < 0 ||
			    (rc = te_buf_printf(rec, err, "%d",
			                        (int)imp->type)) < 0 ||
			    (rc = te_buf_put(rec, "", 1, err)) < 0 ||
			    (rc = te_buf_puts(rec, imp->build_arg, err)) < 0 ||
			    (rc = te_digest_field(d, rec->ptr, rec->len, err)) <
			        0)
				return rc;
		}
	}
	return 0;
}

/* Fields 11-13, each only when werf.yaml sets it, so that the tags of
 * images without them stay what they were. */
static int hash_build_keys(te_digest *d, const te_image_config *img,
                           te_buf *rec, te_error *err)
{
	size_t i;
	int rc;

	te_buf_clear(rec);
	if ((rc = te_buf_puts(rec, "imagespec:", err)) < 0 ||
	    (rc = te_imagespec_serialize(rec, &img->imagespec, err)) < 0)
		return rc;
	if (!te_imagespec_is_empty(&img->imagespec) &&
	    (rc = te_digest_field(d, rec->ptr, rec->len, err)) < 0)
		return rc;
	if (img->network) {
		te_buf_clear(rec);
		if ((rc = te_buf_printf(rec, err, "network:%s", img->network)) <
		        0 ||
		    (rc = te_digest_field(d, rec->ptr, rec->len, err)) < 0)
			return rc;
	}
	if (!img->add_hosts.count)
		return 0;
	if ((rc = field_count(d, "addhosts", img->add_hosts.count, err)) < 0)
		return rc;
	for (i = 0; i < img->add_hosts.count; i++)
		if ((rc = field_str(d, img->add_hosts.items[i], err)) < 0)
			return rc;
	return 0;
}

static int hash_inputs(te_image_inputs *out, const te_image_config *img,
                       const char *platform, const te_buf *dockerfile,
                       const te_strvec *sources, const struct ctx_list *ctx,
                       te_error *err)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	char mdhex[2 * EVP_MAX_MD_SIZE + 1];
	unsigned int mdlen = 0;
	te_strvec args = TE_STRVEC_INIT;
	te_buf rec = TE_BUF_INIT(16384);
	te_digest *d = NULL;
	size_t i, nurls = 0;
	int rc;

	if (EVP_Digest(dockerfile->ptr, dockerfile->len, md, &mdlen,
	               EVP_sha256(), NULL) != 1)
		return te_error_set(err, TE_ERROR, "sha256 failed");
	hex(mdhex, md, mdlen);
	for (i = 0; i < img->args.count; i++)
		if ((rc = te_strvec_push(&args, img->args.items[i], err)) < 0)
			goto done;
	te_strvec_sort(&args);

	if ((rc = te_digest_new(&d, err)) < 0 ||
	    (rc = field_str(d, TE_DIGEST_VERSION, err)) < 0 ||
	    (rc = field_str(d, platform ? platform : "", err)) < 0 ||
	    (rc = field_str(d, img->target ? img->target : "", err)) < 0 ||
	    (rc = field_count(d, "args", args.count, err)) < 0)
		goto done;
	for (i = 0; i < args.count; i++)
		if ((rc = field_str(d, args.items[i], err)) < 0)
			goto done;
	if ((rc = field_count(d, "bases", out->bases.count, err)) < 0)
		goto done;
	for (i = 0; i < out->bases.count; i++)
		if ((rc = field_str(d, out->bases.items[i], err)) < 0)
			goto done;
	te_buf_clear(&rec);
	if ((rc = te_buf_printf(&rec, err, "dockerfile:%s", mdhex)) < 0 ||
	    (rc = te_digest_field(d, rec.ptr, rec.len, err)) < 0 ||
	    (rc = field_count(d, "files", out->files.count, err)) < 0)
		goto done;
	/* ctx is in path order (te_gitsrc_walk), the same order as
	 * files. */
	for (i = 0; i < ctx->count; i++) {
		const struct ctx_entry *e = &ctx->items[i];

		if (!e->keep)
			continue;
		te_buf_clear(&rec);
		if ((rc = te_buf_puts(&rec, e->path, err)) < 0 ||
		    (rc = te_buf_put(&rec, "", 1, err)) < 0 ||
		    (rc = te_buf_printf(&rec, err, "%o", e->mode)) < 0 ||
		    (rc = te_buf_put(&rec, "", 1, err)) < 0 ||
		    (rc = te_buf_puts(&rec, e->oid, err)) < 0 ||
		    (rc = te_digest_field(d, rec.ptr, rec.len, err)) < 0)
			goto done;
	}
	for (i = 0; i < sources->count; i++)
		nurls += is_url(sources->items[i]);
	if ((rc = field_count(d, "urls", nurls, err)) < 0)
		goto done;
	for (i = 0; i < sources->count; i++)
		if (is_url(sources->items[i]) &&
		    (rc = field_str(d, sources->items[i], err)) < 0)
			goto done;
	if ((rc = hash_werf_keys(d, img, &rec, err)) < 0 ||
	    (rc = hash_build_keys(d, img, &rec, err)) < 0)
		goto done;
	rc = te_digest_final(out->content_tag, d, err);
done:
	te_digest_free(d);
	te_strvec_dispose(&args);
	te_buf_dispose(&rec);
	return rc;
}

static int path_cmp(const void *a, const void *b)
{
	const struct ctx_entry *x = a, *y = b;

	return strcmp(x->path, y->path);
}

int te_digest_image(te_image_inputs *out, te_gitsrc *src, const char *commit,
                    const te_image_config *img, const char *platform,
                    te_error *err)
{
	te_buf dfdata = TE_BUF_INIT(TE_DOCKERFILE_MAX);
	te_buf igdata = TE_BUF_INIT(TE_DOCKERIGNORE_MAX);
	struct ctx_list ctx = {NULL, 0, 0, err};
	te_strvec sources = TE_STRVEC_INIT;
	te_dockerfile *df = NULL;
	te_ignore *ig = NULL;
	char *dfpath = NULL, *igpath = NULL, *tmp = NULL;
	bool found = false;
	size_t i;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = clean_rel(&out->context_dir, img->context, "context", err)) <
	        0 ||
	    (rc =
	         clean_rel(&out->dockerfile_path,
	                   img->dockerfile && *img->dockerfile ? img->dockerfile
	                                                       : "Dockerfile",
	                   "dockerfile", err)) < 0)
		goto done;
	if (!*out->dockerfile_path) {
		rc = te_error_set(err, TE_EINVALID,
		                  "dockerfile '%s' is not a "
		                  "file",
		                  img->dockerfile);
		goto done;
	}

	/* The Dockerfile. */
	if ((rc = join(&dfpath, out->context_dir, out->dockerfile_path, err)) <
	    0)
		goto done;
	if ((rc = te_gitsrc_read_file(&dfdata, src, commit, dfpath, err)) < 0) {
		te_error_wrap(err, "image '%s'", img->name ? img->name : "");
		goto done;
	}
	if ((rc = te_dockerfile_parse(&df, dfdata.ptr, dfdata.len, err)) < 0) {
		te_error_wrap(err, "%s", dfpath);
		goto done;
	}

	/* .dockerignore: <dockerfile>.dockerignore, then .dockerignore.
	 */
	if ((rc = te_buf_printf(&igdata, err, "%s.dockerignore",
	                        out->dockerfile_path)) < 0)
		goto done;
	igpath = te_buf_detach(&igdata);
	te_buf_init(&igdata, TE_DOCKERIGNORE_MAX);
	if (!igpath) {
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
		goto done;
	}
	if ((rc = join(&tmp, out->context_dir, igpath, err)) < 0 ||
	    (rc = read_optional(&igdata, &found, src, commit, tmp, err)) < 0)
		goto done;
	if (!found) {
		free(igpath);
		free(tmp);
		tmp = NULL;
		igpath = te_strdup(".dockerignore", err);
		if (!igpath) {
			rc = err->code;
			goto done;
		}
		if ((rc = join(&tmp, out->context_dir, igpath, err)) < 0 ||
		    (rc = read_optional(&igdata, &found, src, commit, tmp,
		                        err)) < 0)
			goto done;
	}
	if (!found) {
		free(igpath);
		igpath = NULL;
	} else if ((rc = te_ignore_parse(&ig, igdata.ptr, igdata.len, err)) <
	           0) {
		te_error_wrap(err, "%s", tmp);
		goto done;
	}

	rc = te_dockerfile_inputs(&out->bases, &sources, df, img->target,
	                          (const char *const *)img->args.items,
	                          img->args.count, err);
	if (rc < 0) {
		te_error_wrap(err, "%s", dfpath);
		goto done;
	}

	/* The context files the build may read. */
	if ((rc = te_gitsrc_walk(src, commit, out->context_dir, collect, &ctx,
	                         err)) < 0) {
		te_error_wrap(err, "context of image '%s'",
		              img->name ? img->name : "");
		goto done;
	}
	qsort(ctx.items, ctx.count, sizeof(*ctx.items), path_cmp);
	for (i = 0; i < ctx.count; i++) {
		struct ctx_entry *e = &ctx.items[i];
		bool excluded = false;

		e->keep = strcmp(e->path, out->dockerfile_path) == 0 ||
		          (igpath && strcmp(e->path, igpath) == 0);
		if (e->keep || !te_dockerfile_sources_match(&sources, e->path))
			continue;
		if ((rc = te_ignore_check(&excluded, ig, e->path, err)) < 0) {
			te_error_wrap(err, "%s", igpath);
			goto done;
		}
		e->keep = !excluded;
	}
	if ((rc = keep_link_targets(&ctx, src, err)) < 0)
		goto done;
	for (i = 0; i < ctx.count; i++)
		if (ctx.items[i].keep &&
		    (rc = te_strvec_push(&out->files, ctx.items[i].path, err)) <
		        0)
			goto done;
	rc = hash_inputs(out, img, platform, &dfdata, &sources, &ctx, err);
done:
	if (rc < 0)
		te_image_inputs_dispose(out);
	te_dockerfile_free(df);
	te_ignore_free(ig);
	te_strvec_dispose(&sources);
	ctx_list_dispose(&ctx);
	te_buf_dispose(&dfdata);
	te_buf_dispose(&igdata);
	free(dfpath);
	free(igpath);
	free(tmp);
	return rc;
}

static bool content_tag_ok(const char *tag)
{
	size_t i;

	for (i = 0; i < TE_CONTENT_TAG_LEN; i++)
		if (!((tag[i] >= '0' && tag[i] <= '9') ||
		      (tag[i] >= 'a' && tag[i] <= 'f')))
			return false;
	return tag[TE_CONTENT_TAG_LEN] == '\0';
}

struct platform_tag {
	const char *platform;
	const char *tag;
};

static int platform_tag_cmp(const void *a, const void *b)
{
	const struct platform_tag *x = a, *y = b;

	return strcmp(x->platform, y->platform);
}

int te_digest_multiplatform(char out[TE_CONTENT_TAG_LEN + 1],
                            const char *const *platforms,
                            const char *const *tags, size_t n, te_error *err)
{
	struct platform_tag *sorted = NULL;
	te_digest *d = NULL;
	size_t i;
	int rc = 0;

	out[0] = '\0';
	if (n < 2)
		return te_error_set(err, TE_EINVALID,
		                    "a multi-platform image needs at least two "
		                    "platforms");
	sorted = calloc(n, sizeof(*sorted));
	if (!sorted)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	for (i = 0; i < n; i++) {
		if (!platforms[i] || !tags[i] || !content_tag_ok(tags[i])) {
			rc = te_error_set(err, TE_EINVALID,
			                  "invalid per-platform content tag");
			goto done;
		}
		sorted[i].platform = platforms[i];
		sorted[i].tag = tags[i];
	}
	qsort(sorted, n, sizeof(*sorted), platform_tag_cmp);
	for (i = 1; i < n; i++) {
		if (strcmp(sorted[i - 1].platform, sorted[i].platform) == 0) {
			rc = te_error_set(err, TE_EINVALID,
			                  "platform \"%.100s\" is listed twice",
			                  sorted[i].platform);
			goto done;
		}
	}
	if ((rc = te_digest_new(&d, err)) < 0)
		goto done;
	for (i = 0; i < n; i++)
		if ((rc = field_str(d, sorted[i].tag, err)) < 0)
			goto done;
	rc = te_digest_final(out, d, err);
done:
	te_digest_free(d);
	free(sorted);
	return rc;
}

/*
 * stapel/layer.c - a git patch as one image layer put straight into the
 * stages repo, without a build: the base stage's manifest and config get
 * one more gzip'd tar layer (changed files, and whiteouts for deleted
 * ones: https://github.com/opencontainers/image-spec/blob/main/layer.md),
 * the stage's labels, and are pushed under the stage's tag.
 *
 * Used for gitLatestPatch, the stage a commit that changes files no stage
 * depends on rebuilds: it then costs a few registry requests instead of a
 * pull, a container build and a push.  Anything this path does not handle
 * (owner or group names, which only the image's /etc/passwd resolves;
 * paths ustar cannot hold; a patch over PATCH_MAX) returns
 * TE_EUNSUPPORTED, and the caller builds the stage with buildah instead.
 *
 * The tar is reproducible: mtime 0, numeric owners, entries in path order.
 */
#include "stapel/stapel_build.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <zlib.h>

#include "tagexport/image.h"

#define PATCH_MAX (64u << 20)
#define BLOB_LINK_MAX 100 /* ustar linkname */

static int unsupported(te_error *err, const char *why)
{
	return te_error_set(err, TE_EUNSUPPORTED, "patch layer: %s", why);
}

/* Split path over ustar's prefix (155) and name (100) fields. */
static bool split_name(const char *path, size_t *prefix_len)
{
	size_t n = strlen(path), i;

	*prefix_len = 0;
	if (n <= 100)
		return true;
	for (i = n - 1; i > 0; i--)
		if (path[i] == '/' && n - i - 1 <= 100 && i <= 155) {
			*prefix_len = i;
			return true;
		}
	return false;
}

static int tar_entry(te_buf *tar, const char *path, unsigned mode, char type,
                     const void *data, size_t size, const char *link,
                     unsigned uid, unsigned gid, te_error *err)
{
	unsigned char h[512];
	size_t pre, i;
	unsigned sum = 0;
	static const unsigned char zero[512];
	int rc;

	if (!split_name(path, &pre) || (link && strlen(link) > BLOB_LINK_MAX))
		return unsupported(err, "a path too long for ustar");
	memset(h, 0, sizeof(h));
	if (pre) {
		memcpy(h + 345, path, pre);
		memcpy(h, path + pre + 1, strlen(path) - pre - 1);
	} else {
		memcpy(h, path, strlen(path));
	}
	snprintf((char *)h + 100, 8, "%07o", mode & 07777);
	snprintf((char *)h + 108, 8, "%07o", uid);
	snprintf((char *)h + 116, 8, "%07o", gid);
	snprintf((char *)h + 124, 12, "%011llo", (unsigned long long)size);
	snprintf((char *)h + 136, 12, "%011o", 0u);
	h[156] = (unsigned char)type;
	if (link)
		memcpy(h + 157, link, strlen(link));
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	memset(h + 148, ' ', 8);
	for (i = 0; i < sizeof(h); i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	rc = te_buf_put(tar, h, sizeof(h), err);
	if (rc == 0 && size)
		rc = te_buf_put(tar, data, size, err);
	if (rc == 0 && size % 512)
		rc = te_buf_put(tar, zero, 512 - size % 512, err);
	return rc;
}

static bool numeric(const char *s, unsigned *out)
{
	char *end;
	unsigned long v;

	*out = 0;
	if (!s)
		return true;
	v = strtoul(s, &end, 10);
	if (!*s || *end || v > 0x7ffffff)
		return false;
	*out = (unsigned)v;
	return true;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool known(const te_strvec *dirs, const char *d)
{
	return bsearch(&d, dirs->items, dirs->count, sizeof(char *), cmp_str) !=
	       NULL;
}

/* Directory entries for the parents of path the base does not have. */
static int parents(te_buf *tar, te_strvec *dirs, const char *path,
                   te_error *err)
{
	char dir[4096];
	const char *p;
	int rc = 0;

	for (p = strchr(path, '/'); rc == 0 && p; p = strchr(p + 1, '/')) {
		snprintf(dir, sizeof(dir), "%.*s", (int)(p - path), path);
		if (known(dirs, dir))
			continue;
		rc = tar_entry(tar, dir, 0755, '5', NULL, 0, NULL, 0, 0, err);
		if (rc == 0)
			rc = te_strvec_push(dirs, dir, err);
		te_strvec_sort(dirs);
	}
	return rc;
}

static int add_file(te_buf *tar, te_strvec *dirs, const te_stapel_patch_file *f,
                    te_gitsrc *src, te_error *err)
{
	te_buf blob = TE_BUF_INIT(PATCH_MAX);
	const char *path = f->path + 1; /* layer paths are relative */
	int rc;

	rc = parents(tar, dirs, path, err);
	if (rc == 0)
		rc = te_gitsrc_read_blob(&blob, f->src ? f->src : src, f->oid,
		                         err);
	if (rc == TE_EINVALID)
		rc = unsupported(err, "a file over the size limit");
	if (rc == 0 && f->mode == 0120000) {
		char link[BLOB_LINK_MAX + 1];
		if (blob.len > BLOB_LINK_MAX || memchr(blob.ptr, 0, blob.len))
			rc = unsupported(err, "a long symlink");
		snprintf(link, sizeof(link), "%.*s", (int)blob.len, blob.ptr);
		if (rc == 0)
			rc = tar_entry(tar, path, 0777, '2', NULL, 0, link,
			               f->uid, f->gid, err);
	} else if (rc == 0) {
		rc = tar_entry(tar, path, f->mode & 0111 ? 0755 : 0644, '0',
		               blob.ptr, blob.len, NULL, f->uid, f->gid, err);
	}
	te_buf_dispose(&blob);
	return rc;
}

/* "/app/x/y" -> "app/x/.wh.y" */
static int whiteout(te_buf *tar, const char *path, te_error *err)
{
	const char *base = strrchr(path, '/') + 1;
	te_buf name = TE_BUF_INIT(8192);
	int rc;

	rc = te_buf_printf(&name, err, "%.*s.wh.%s", (int)(base - path - 1),
	                   path + 1, base);
	if (rc == 0)
		rc = tar_entry(tar, name.ptr, 0644, '0', NULL, 0, NULL, 0, 0,
		               err);
	te_buf_dispose(&name);
	return rc;
}

static int build_tar(te_buf *tar, const te_stapel_patchset *ps, te_gitsrc *src,
                     te_error *err)
{
	static const unsigned char end[1024];
	te_strvec dirs = TE_STRVEC_INIT;
	size_t i;
	int rc = 0;

	for (i = 0; rc == 0 && i < ps->known_dirs.count; i++)
		rc = te_strvec_push(&dirs, ps->known_dirs.items[i] + 1, err);
	te_strvec_sort(&dirs);
	for (i = 0; rc == 0 && i < ps->removed.count; i++)
		rc = whiteout(tar, ps->removed.items[i], err);
	for (i = 0; rc == 0 && i < ps->nfiles; i++)
		rc = add_file(tar, &dirs, &ps->files[i], src, err);
	if (rc == 0)
		rc = te_buf_put(tar, end, sizeof(end), err);
	te_strvec_dispose(&dirs);
	return rc == TE_EINVALID ? unsupported(err, "a patch over 64 MiB") : rc;
}

/* in as gzip, in *out (malloc'd, *outlen bytes). */
static int gzip(unsigned char **out, size_t *outlen, const te_buf *in,
                te_error *err)
{
	z_stream zs;
	size_t bound;
	int zrc;

	*out = NULL;
	memset(&zs, 0, sizeof(zs));
	if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
	                 Z_DEFAULT_STRATEGY) != Z_OK)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	bound = deflateBound(&zs, (uLong)in->len);
	*out = malloc(bound);
	if (!*out) {
		deflateEnd(&zs);
		return te_error_set(err, TE_ENOMEM, "out of memory");
	}
	zs.next_in = (Bytef *)in->ptr;
	zs.avail_in = (uInt)in->len;
	zs.next_out = *out;
	zs.avail_out = (uInt)bound;
	zrc = deflate(&zs, Z_FINISH);
	*outlen = bound - zs.avail_out;
	deflateEnd(&zs);
	if (zrc == Z_STREAM_END)
		return 0;
	free(*out);
	*out = NULL;
	return te_error_set(err, TE_EIO, "gzip of the patch layer failed");
}

/* The base config with the stage's labels and, unless diff_id is NULL,
 * the new layer's diff_id and a history entry for it. */
static int new_config(char **out, const te_buf *base, const char *diff_id,
                      const te_stapel_layer_target *t, te_error *err)
{
	const te_labels *labels = t->labels;
	char by[128];
	json_t *root = json_loadb(base->ptr, base->len, 0, NULL);
	json_t *cfg, *lab, *ids, *hist;
	size_t i;
	int rc = 0;

	*out = NULL;
	cfg = json_object_get(root, "config");
	ids = json_object_get(json_object_get(root, "rootfs"), "diff_ids");
	if (!json_is_object(cfg) || !json_is_array(ids)) {
		json_decref(root);
		return unsupported(err, "a base config without rootfs");
	}
	lab = json_object_get(cfg, "Labels");
	if (!json_is_object(lab)) {
		lab = json_object();
		json_object_set_new(cfg, "Labels", lab);
	}
	for (i = 0; i < te_labels_count(labels); i++)
		json_object_set_new(lab, te_labels_key(labels, i),
		                    json_string(te_labels_value(labels, i)));
	hist = json_object_get(root, "history");
	if (diff_id)
		json_array_append_new(ids, json_string(diff_id));
	snprintf(by, sizeof(by), "tagexport: stapel %s",
	         t->stage ? t->stage : "gitLatestPatch");
	if (diff_id && json_is_array(hist))
		json_array_append_new(hist, json_pack("{s:s, s:s}", "created",
		                                      "1970-01-01T00:00:00Z",
		                                      "created_by", by));
	*out = json_dumps(root, JSON_COMPACT);
	if (!*out)
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
	json_decref(root);
	return rc;
}

static int new_manifest(char **out, const te_buf *base, const char *media_type,
                        const char *layer, size_t layer_size,
                        const char *config, size_t config_size, te_error *err)
{
	json_t *root = json_loadb(base->ptr, base->len, 0, NULL);
	json_t *layers = json_object_get(root, "layers");
	json_t *cfg = json_object_get(root, "config");
	bool oci = strstr(media_type, "oci") != NULL;

	*out = NULL;
	if (!json_is_array(layers) || !json_is_object(cfg)) {
		json_decref(root);
		return unsupported(err, "a base manifest without layers");
	}
	json_object_set_new(cfg, "digest", json_string(config));
	json_object_set_new(cfg, "size", json_integer((json_int_t)config_size));
	if (layer)
		json_array_append_new(
		    layers,
		    json_pack(
		        "{s:s, s:I, s:s}", "mediaType",
		        oci ? "application/vnd.oci.image.layer.v1.tar+gzip"
		            : "application/"
		              "vnd.docker.image.rootfs.diff.tar.gzip",
		        "size", (json_int_t)layer_size, "digest", layer));
	*out = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	return *out ? 0 : te_error_set(err, TE_ENOMEM, "out of memory");
}

int te_stapel__layer_push(char digest_out[TE_DIGEST_STR_MAX],
                          const te_stapel_patchset *ps,
                          const te_stapel_layer_target *t, te_error *err)
{
	te_buf tar = TE_BUF_INIT(PATCH_MAX);
	char diff_id[TE_DIGEST_STR_MAX], layer[TE_DIGEST_STR_MAX];
	char cdigest[TE_DIGEST_STR_MAX];
	char *config = NULL, *manifest = NULL;
	unsigned char *gz = NULL;
	size_t gzlen = 0;
	bool empty = ps->nfiles == 0 && ps->removed.count == 0;
	int rc = 0;

	if (!te_image_is_manifest_type(t->media_type))
		return unsupported(err, "a base that is not one image");
	/* nothing changed: the base's layers under the new labels */
	if (!empty)
		rc = build_tar(&tar, ps, t->src, err);
	if (rc == 0 && !empty)
		rc = gzip(&gz, &gzlen, &tar, err);
	if (rc < 0)
		goto done;
	if (!empty) {
		te_image_sha256(diff_id, tar.ptr, tar.len);
		te_image_sha256(layer, gz, gzlen);
	}
	rc =
	    new_config(&config, t->base_config, empty ? NULL : diff_id, t, err);
	if (rc == 0) {
		te_image_sha256(cdigest, config, strlen(config));
		rc = new_manifest(&manifest, t->base_manifest, t->media_type,
		                  empty ? NULL : layer, gzlen, cdigest,
		                  strlen(config), err);
	}
	if (rc == 0 && !empty)
		rc = te_registry_blob_put(t->reg, t->repo, layer, gz, gzlen,
		                          err);
	if (rc == 0)
		rc = te_registry_blob_put(t->reg, t->repo, cdigest, config,
		                          strlen(config), err);
	if (rc == 0)
		rc = te_registry_manifest_put(digest_out, t->reg, t->repo,
		                              t->tag, t->media_type, manifest,
		                              strlen(manifest), err);
done:
	free(config);
	free(manifest);
	free(gz);
	te_buf_dispose(&tar);
	return rc;
}

/* Owners of a mapping's files in the patch layer: numbers only. */
int te_stapel__patch_owner(te_stapel_patch_file *f, const te_stapel_git *g,
                           te_error *err)
{
	if (!numeric(g->owner, &f->uid) || !numeric(g->group, &f->gid))
		return unsupported(err, "owner or group given by name");
	return 0;
}

#include "tagexport/image.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

/* Documents nest a few levels; anything deeper is hostile. */
#define JSON_FLAGS (JSON_REJECT_DUPLICATES)

void te_image_sha256(char out[TE_DIGEST_STR_MAX], const void *data, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	unsigned int i;

	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	memcpy(out, "sha256:", 7);
	for (i = 0; i < mdlen && i < 32; i++) {
		out[7 + 2 * i] = hex[md[i] >> 4];
		out[8 + 2 * i] = hex[md[i] & 15];
	}
	out[7 + 64] = '\0';
}

bool te_image_digest_valid(const char *d)
{
	size_t i;

	if (!d || strncmp(d, "sha256:", 7) != 0 || strlen(d) != 71)
		return false;
	for (i = 7; i < 71; i++)
		if (!((d[i] >= '0' && d[i] <= '9') ||
		      (d[i] >= 'a' && d[i] <= 'f')))
			return false;
	return true;
}

bool te_image_is_manifest_type(const char *mt)
{
	return strcmp(mt, "application/vnd.oci.image.manifest.v1+json") == 0 ||
	       strcmp(mt, "application/vnd.docker.distribution.manifest.v2+"
	                  "json") == 0;
}

static int load(json_t **out, const void *data, size_t len, const char *what,
                te_error *err)
{
	json_error_t jerr;

	*out = json_loadb(data, len, JSON_FLAGS, &jerr);
	if (!*out)
		return te_error_set(err, TE_EINVALID,
		                    "%s is not valid JSON: %s", what,
		                    jerr.text);
	if (!json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return te_error_set(err, TE_EINVALID, "%s is not a JSON object",
		                    what);
	}
	return 0;
}

static int read_descriptor(char digest[TE_DIGEST_STR_MAX], int64_t *size,
                           json_t *desc, const char *what, te_error *err)
{
	json_t *dv = json_object_get(desc, "digest");
	const char *d = json_string_value(dv);
	json_t *s = json_object_get(desc, "size");

	/* The length check also refuses an embedded NUL. */
	if (!te_image_digest_valid(d) || json_string_length(dv) != 71 ||
	    !json_is_integer(s) || json_integer_value(s) < 0)
		return te_error_set(err, TE_EINVALID,
		                    "manifest has a malformed %s descriptor",
		                    what);
	memcpy(digest, d, 72);
	*size = json_integer_value(s);
	return 0;
}

int te_image_manifest_parse(te_image_manifest *out, const void *data,
                            size_t len, te_error *err)
{
	json_t *root = NULL, *layers;
	size_t i;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = load(&root, data, len, "manifest", err);
	if (rc < 0)
		return rc;
	rc = read_descriptor(out->config_digest, &out->config_size,
	                     json_object_get(root, "config"), "config", err);
	if (rc < 0)
		goto done;
	layers = json_object_get(root, "layers");
	if (!json_is_array(layers)) {
		rc = te_error_set(err, TE_EINVALID,
		                  "manifest has no layers array");
		goto done;
	}
	out->nlayers = json_array_size(layers);
	out->layers = calloc(out->nlayers + 1, sizeof(*out->layers));
	out->layer_digests =
	    calloc(out->nlayers + 1, sizeof(*out->layer_digests));
	if (!out->layers || !out->layer_digests) {
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
		goto done;
	}
	for (i = 0; i < out->nlayers; i++) {
		rc =
		    read_descriptor(out->layer_digests[i], &out->layers[i].size,
		                    json_array_get(layers, i), "layer", err);
		if (rc < 0)
			goto done;
		out->layers[i].digest = out->layer_digests[i];
	}
done:
	json_decref(root);
	if (rc < 0)
		te_image_manifest_dispose(out);
	return rc;
}

void te_image_manifest_dispose(te_image_manifest *m)
{
	free(m->layers);
	free(m->layer_digests);
	memset(m, 0, sizeof(*m));
}

/* Remove werf's labels; returns whether anything was removed. */
static bool strip_werf_labels(json_t *labels)
{
	const char *key;
	json_t *value;
	void *tmp;
	bool changed = false;

	json_object_foreach_safe(labels, tmp, key, value)
	{
		if (strncmp(key, "werf", 4) == 0) {
			json_object_del(labels, key);
			changed = true;
		}
	}
	return changed;
}

static int set_labels(json_t *labels, const te_labels *add, bool *changed,
                      te_error *err)
{
	size_t i;

	for (i = 0; add && i < te_labels_count(add); i++) {
		const char *k = te_labels_key(add, i);
		const char *v = te_labels_value(add, i);
		json_t *old = json_object_get(labels, k);

		if (json_is_string(old) &&
		    strcmp(json_string_value(old), v) == 0)
			continue;
		if (json_object_set_new(labels, k, json_string(v)))
			return te_error_set(err, TE_EINVALID,
			                    "label \"%s\" is not valid UTF-8",
			                    k);
		*changed = true;
	}
	return 0;
}

/* The object holding Labels: created when labels must be added. */
static int labels_object(json_t **out, json_t *root, bool create, te_error *err)
{
	json_t *inner = json_object_get(root, "config");
	json_t *labels;

	*out = NULL;
	if (inner && !json_is_object(inner) && !json_is_null(inner))
		return te_error_set(err, TE_EINVALID,
		                    "image config field \"config\" is not an "
		                    "object");
	if (!json_is_object(inner)) {
		if (!create)
			return 0;
		inner = json_object();
		if (!inner || json_object_set_new(root, "config", inner))
			return te_error_set(err, TE_ENOMEM, "out of memory");
	}
	labels = json_object_get(inner, "Labels");
	if (labels && !json_is_object(labels) && !json_is_null(labels))
		return te_error_set(err, TE_EINVALID,
		                    "image config Labels is not an object");
	if (!json_is_object(labels)) {
		if (!create)
			return 0;
		labels = json_object();
		if (!labels || json_object_set_new(inner, "Labels", labels))
			return te_error_set(err, TE_ENOMEM, "out of memory");
	}
	*out = labels;
	return 0;
}

static int dump_into(te_buf *out, json_t *doc, te_error *err)
{
	char *s = json_dumps(doc, JSON_COMPACT);
	int rc;

	if (!s)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	te_buf_clear(out);
	rc = te_buf_puts(out, s, err);
	free(s);
	return rc;
}

int te_image_relabel_config(te_buf *out, bool *changed, const void *config,
                            size_t len, const te_labels *add, te_error *err)
{
	bool adding = add && te_labels_count(add) > 0;
	json_t *root = NULL, *labels = NULL;
	int rc;

	*changed = false;
	rc = load(&root, config, len, "image config", err);
	if (rc == 0)
		rc = labels_object(&labels, root, adding, err);
	if (rc < 0)
		goto done;
	if (labels) {
		*changed = strip_werf_labels(labels);
		rc = set_labels(labels, add, changed, err);
		if (rc < 0)
			goto done;
	}
	if (*changed) {
		rc = dump_into(out, root, err);
	} else {
		/* Nothing to change: keep every original byte. */
		te_buf_clear(out);
		rc = te_buf_put(out, config, len, err);
	}
done:
	json_decref(root);
	return rc;
}

int te_image_manifest_set_config(te_buf *out, const void *manifest, size_t len,
                                 const char *config_digest, size_t config_size,
                                 te_error *err)
{
	json_t *root = NULL, *desc;
	int rc;

	rc = load(&root, manifest, len, "manifest", err);
	if (rc < 0)
		return rc;
	desc = json_object_get(root, "config");
	if (!json_is_object(desc)) {
		rc = te_error_set(err, TE_EINVALID,
		                  "manifest has no config descriptor");
		goto done;
	}
	if (json_object_set_new(desc, "digest", json_string(config_digest)) ||
	    json_object_set_new(desc, "size",
	                        json_integer((json_int_t)config_size))) {
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
		goto done;
	}
	rc = dump_into(out, root, err);
done:
	json_decref(root);
	return rc;
}

/* ---- indexes (oci-distribution.md 1.2, 4.3) ---------------------------- */

#define DOCKER_LIST_TYPE                                                       \
	"application/vnd.docker.distribution.manifest.list.v2+json"
#define OCI_INDEX_TYPE "application/vnd.oci.image.index.v1+json"

bool te_image_is_index_type(const char *mt)
{
	return strcmp(mt, OCI_INDEX_TYPE) == 0 ||
	       strcmp(mt, DOCKER_LIST_TYPE) == 0;
}

/* 1-31 characters of [A-Za-z0-9._-]: safe in logs, reports and argv. */
static bool platform_field_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len >= TE_PLATFORM_FIELD_MAX)
		return false;
	for (i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return false;
	}
	return true;
}

/* A platform field of a JSON object; optional ones may be absent. */
static int platform_field(char out[TE_PLATFORM_FIELD_MAX], json_t *obj,
                          const char *key, bool required, const char *what,
                          te_error *err)
{
	json_t *v = json_object_get(obj, key);
	const char *s = json_string_value(v);

	out[0] = '\0';
	if (!v && !required)
		return 0;
	if (!s || !platform_field_ok(s, json_string_length(v)))
		return te_error_set(err, TE_EINVALID,
		                    "%s has a missing or malformed \"%s\"",
		                    what, key);
	memcpy(out, s, json_string_length(v) + 1);
	return 0;
}

static int read_platform(te_image_platform *out, json_t *obj, const char *what,
                         te_error *err)
{
	int rc;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(obj))
		return te_error_set(err, TE_EINVALID,
		                    "%s platform is not an object", what);
	rc = platform_field(out->os, obj, "os", true, what, err);
	if (rc == 0)
		rc = platform_field(out->architecture, obj, "architecture",
		                    true, what, err);
	if (rc == 0)
		rc = platform_field(out->variant, obj, "variant", false, what,
		                    err);
	return rc;
}

int te_image_platform_parse(te_image_platform *out, const char *text,
                            te_error *err)
{
	char *fields[3];
	const char *p = text;
	size_t i, len;

	memset(out, 0, sizeof(*out));
	fields[0] = out->os;
	fields[1] = out->architecture;
	fields[2] = out->variant;
	for (i = 0; i < 3; i++) {
		len = strcspn(p, "/");
		if (!platform_field_ok(p, len))
			break;
		memcpy(fields[i], p, len);
		fields[i][len] = '\0';
		p += len;
		if (*p == '\0' && i >= 1)
			return 0;
		if (*p != '/')
			break;
		p++;
	}
	memset(out, 0, sizeof(*out));
	return te_error_set(err, TE_EINVALID,
	                    "platform \"%.100s\" is not OS/ARCH[/VARIANT]",
	                    text);
}

int te_image_config_platform(te_image_platform *out, const void *config,
                             size_t len, te_error *err)
{
	json_t *root = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = load(&root, config, len, "image config", err);
	if (rc == 0)
		rc = read_platform(out, root, "image config", err);
	json_decref(root);
	return rc;
}

bool te_image_platform_matches(const te_image_platform *want,
                               const te_image_platform *have)
{
	return strcmp(want->os, have->os) == 0 &&
	       strcmp(want->architecture, have->architecture) == 0 &&
	       (!want->variant[0] || strcmp(want->variant, have->variant) == 0);
}

void te_image_platform_format(char out[TE_PLATFORM_STR_MAX],
                              const te_image_platform *p)
{
	out[0] = '\0';
	if (!p->os[0] && !p->architecture[0])
		return;
	snprintf(out, TE_PLATFORM_STR_MAX, "%s/%s%s%s", p->os, p->architecture,
	         p->variant[0] ? "/" : "", p->variant);
}

static bool is_attestation(json_t *desc, const te_image_index_entry *e)
{
	json_t *annotations = json_object_get(desc, "annotations");
	const char *type = json_string_value(
	    json_object_get(annotations, "vnd.docker.reference.type"));

	if (type && strcmp(type, "attestation-manifest") == 0)
		return true;
	return e->has_platform && strcmp(e->platform.os, "unknown") == 0 &&
	       strcmp(e->platform.architecture, "unknown") == 0;
}

static int media_type_field(char out[128], json_t *obj, const char *what,
                            te_error *err)
{
	json_t *v = json_object_get(obj, "mediaType");

	out[0] = '\0';
	if (!v)
		return 0;
	if (!json_is_string(v) || json_string_length(v) >= 128 ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return te_error_set(err, TE_EINVALID,
		                    "%s has a malformed mediaType", what);
	memcpy(out, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

static int read_entry(te_image_index_entry *e, json_t *desc, te_error *err)
{
	json_t *annotations, *platform;
	int rc;

	if (!json_is_object(desc))
		return te_error_set(err, TE_EINVALID,
		                    "index entry is not an object");
	rc = read_descriptor(e->digest, &e->size, desc, "index entry", err);
	if (rc == 0)
		rc = media_type_field(e->media_type, desc, "index entry", err);
	if (rc < 0)
		return rc;
	annotations = json_object_get(desc, "annotations");
	if (annotations && !json_is_object(annotations))
		return te_error_set(err, TE_EINVALID,
		                    "index entry annotations are not an "
		                    "object");
	platform = json_object_get(desc, "platform");
	if (platform) {
		rc = read_platform(&e->platform, platform, "index entry", err);
		if (rc < 0)
			return rc;
		e->has_platform = true;
	}
	e->attestation = is_attestation(desc, e);
	return 0;
}

/* Validate a loaded index document and fill out from it. */
static int index_from_root(te_image_index *out, json_t *root, te_error *err)
{
	json_t *version = json_object_get(root, "schemaVersion");
	json_t *manifests = json_object_get(root, "manifests");
	size_t i;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!json_is_integer(version) || json_integer_value(version) != 2)
		return te_error_set(err, TE_EINVALID,
		                    "image index schemaVersion is not 2");
	rc = media_type_field(out->media_type, root, "image index", err);
	if (rc < 0)
		return rc;
	if (!json_is_array(manifests))
		return te_error_set(err, TE_EINVALID,
		                    "image index has no manifests array");
	if (json_array_size(manifests) > TE_IMAGE_INDEX_MAX_ENTRIES)
		return te_error_set(
		    err, TE_EINVALID, "image index has %zu entries (max %d)",
		    json_array_size(manifests), TE_IMAGE_INDEX_MAX_ENTRIES);
	out->entries =
	    calloc(json_array_size(manifests) + 1, sizeof(*out->entries));
	if (!out->entries)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	for (i = 0; i < json_array_size(manifests); i++) {
		rc = read_entry(&out->entries[i], json_array_get(manifests, i),
		                err);
		if (rc < 0) {
			te_image_index_dispose(out);
			return rc;
		}
		out->nentries++;
	}
	return 0;
}

int te_image_index_parse(te_image_index *out, const void *data, size_t len,
                         te_error *err)
{
	json_t *root = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = load(&root, data, len, "image index", err);
	if (rc == 0)
		rc = index_from_root(out, root, err);
	json_decref(root);
	return rc;
}

void te_image_index_dispose(te_image_index *idx)
{
	free(idx->entries);
	memset(idx, 0, sizeof(*idx));
}

static const te_image_index_update *
find_update(const te_image_index_update *updates, size_t n, const char *digest)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(updates[i].digest, digest) == 0)
			return &updates[i];
	return NULL;
}

int te_image_index_rewrite(te_buf *out, bool *changed, const void *index,
                           size_t len, const te_image_index_update *updates,
                           size_t nupdates, bool drop_attestations,
                           te_error *err)
{
	te_image_index idx = {0};
	json_t *root = NULL, *manifests;
	size_t i;
	bool dropped = false;
	int rc;

	*changed = false;
	for (i = 0; i < nupdates; i++)
		if (!te_image_digest_valid(updates[i].digest) ||
		    !te_image_digest_valid(updates[i].new_digest) ||
		    updates[i].new_size < 0)
			return te_error_set(err, TE_EINVALID,
			                    "invalid index update");
	rc = load(&root, index, len, "image index", err);
	if (rc == 0)
		rc = index_from_root(&idx, root, err);
	if (rc < 0)
		goto done;
	manifests = json_object_get(root, "manifests");
	/* Backwards, so removing an entry leaves the ones left to visit in
	 * place. */
	for (i = idx.nentries; i-- > 0;) {
		const te_image_index_entry *e = &idx.entries[i];
		const te_image_index_update *u;
		json_t *desc = json_array_get(manifests, i);

		if (drop_attestations && e->attestation) {
			if (json_array_remove(manifests, i)) {
				rc = te_error_set(err, TE_ENOMEM,
				                  "out of memory");
				goto done;
			}
			*changed = dropped = true;
			continue;
		}
		u = find_update(updates, nupdates, e->digest);
		if (!u || (strcmp(u->new_digest, e->digest) == 0 &&
		           u->new_size == e->size))
			continue;
		if (json_object_set_new(desc, "digest",
		                        json_string(u->new_digest)) ||
		    json_object_set_new(
		        desc, "size", json_integer((json_int_t)u->new_size))) {
			rc = te_error_set(err, TE_ENOMEM, "out of memory");
			goto done;
		}
		*changed = true;
	}
	if (dropped && json_array_size(manifests) == 0) {
		rc = te_error_set(err, TE_EINVALID,
		                  "image index has only attestation entries");
		goto done;
	}
	if (*changed) {
		rc = dump_into(out, root, err);
	} else {
		te_buf_clear(out);
		rc = te_buf_put(out, index, len, err);
	}
done:
	if (rc < 0)
		*changed = false;
	te_image_index_dispose(&idx);
	json_decref(root);
	return rc;
}

static bool platform_ok(const te_image_platform *p)
{
	return platform_field_ok(p->os, strlen(p->os)) &&
	       platform_field_ok(p->architecture, strlen(p->architecture)) &&
	       (!p->variant[0] ||
	        platform_field_ok(p->variant, strlen(p->variant)));
}

static json_t *child_json(const te_image_index_child *c)
{
	json_t *platform, *desc;

	platform = json_pack("{s:s, s:s}", "architecture",
	                     c->platform.architecture, "os", c->platform.os);
	if (platform && c->platform.variant[0] &&
	    json_object_set_new(platform, "variant",
	                        json_string(c->platform.variant))) {
		json_decref(platform);
		return NULL;
	}
	/* "o" steals platform, also when json_pack fails. */
	desc = json_pack("{s:s, s:I, s:s, s:o}", "mediaType", c->media_type,
	                 "size", (json_int_t)c->size, "digest", c->digest,
	                 "platform", platform);
	return desc;
}

int te_image_index_build(te_buf *out, const char *media_type,
                         const te_image_index_child *children, size_t n,
                         te_error *err)
{
	json_t *root = NULL, *manifests;
	size_t i;
	int rc = 0;

	if (!media_type || !te_image_is_index_type(media_type) || n == 0 ||
	    n > TE_IMAGE_INDEX_MAX_ENTRIES)
		return te_error_set(err, TE_EINVALID,
		                    "invalid image index request");
	for (i = 0; i < n; i++)
		if (!children[i].media_type ||
		    !te_image_is_manifest_type(children[i].media_type) ||
		    !te_image_digest_valid(children[i].digest) ||
		    children[i].size < 0 || !platform_ok(&children[i].platform))
			return te_error_set(err, TE_EINVALID,
			                    "invalid image index entry %zu", i);
	manifests = json_array();
	root = json_pack("{s:i, s:s, s:o}", "schemaVersion", 2, "mediaType",
	                 media_type, "manifests", manifests);
	if (!root) {
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
		goto done;
	}
	for (i = 0; i < n; i++) {
		if (json_array_append_new(manifests,
		                          child_json(&children[i]))) {
			rc = te_error_set(err, TE_ENOMEM, "out of memory");
			goto done;
		}
	}
	rc = dump_into(out, root, err);
done:
	json_decref(root);
	return rc;
}

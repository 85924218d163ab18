#include "tagexport/image.h"

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
	const char *d = json_string_value(json_object_get(desc, "digest"));
	json_t *s = json_object_get(desc, "size");

	if (!te_image_digest_valid(d) || !json_is_integer(s) ||
	    json_integer_value(s) < 0)
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

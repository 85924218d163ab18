/*
 * registry_probe - drives the te_registry API against real registries for
 * tests/integration/t05-registry.sh and the copy benchmark.
 *
 *   registry_probe [-v] [-j N] copy SRCHOST SRCREPO REF DSTHOST DSTREPO TAG
 *   registry_probe [-v] get-manifest HOST REPO REF
 *   registry_probe [-v] put-blob HOST REPO FILE
 *   registry_probe [-v] get-blob HOST REPO DIGEST
 *   registry_probe [-v] blob-exists HOST REPO DIGEST
 *   registry_probe [-v] mount HOST REPO DIGEST FROMREPO
 *
 * Credentials come from $DOCKER_CONFIG/config.json.  Exit codes: 0 ok,
 * 2 usage, 3 not found, 4 auth, 1 anything else.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "tagexport/registry.h"

static int verbose;

static void log_cb(void *payload, te_log_level level, const char *msg)
{
	(void)payload;
	if (verbose || level >= TE_LOG_WARN)
		fprintf(stderr, "probe: %s\n", msg);
}

static int open_reg(te_registry **out, const char *host, te_error *err)
{
	te_registry_opts o;

	memset(&o, 0, sizeof(o));
	o.docker_config_dir = getenv("DOCKER_CONFIG");
	o.log.fn = log_cb;
	return te_registry_new(out, host, &o, err);
}

static int copy_image(te_registry *src, const char *srepo, const char *ref,
                      te_registry *dst, const char *drepo, const char *tag,
                      int parallel, uint64_t *bytes, char dg_out[72],
                      te_error *err)
{
	te_buf body = TE_BUF_INIT(TE_MANIFEST_MAX);
	char mt[128], dg[TE_DIGEST_STR_MAX], put_dg[TE_DIGEST_STR_MAX];
	te_blob_desc *blobs = NULL;
	json_t *root = NULL, *arr, *it;
	size_t n = 0, i;
	uint64_t got = 0;
	int rc;

	rc = te_registry_manifest_get(&body, mt, dg, src, srepo, ref, err);
	if (rc < 0)
		goto done;
	root = json_loadb(body.ptr, body.len, 0, NULL);
	if (!root) {
		rc = te_error_set(err, TE_EINVALID, "manifest is not json");
		goto done;
	}
	arr = json_object_get(root, "manifests");
	if (json_is_array(arr)) {
		json_array_foreach(arr, i, it)
		{
			const char *cd =
			    json_string_value(json_object_get(it, "digest"));
			char cdg[TE_DIGEST_STR_MAX];

			if (!cd) {
				rc = te_error_set(err, TE_EINVALID,
				                  "index entry without digest");
				goto done;
			}
			rc = copy_image(src, srepo, cd, dst, drepo, cd,
			                parallel, &got, cdg, err);
			*bytes += got;
			if (rc < 0)
				goto done;
		}
	} else {
		arr = json_object_get(root, "layers");
		blobs = calloc(json_array_size(arr) + 1, sizeof(*blobs));
		if (!blobs) {
			rc = te_error_set(err, TE_ENOMEM, "out of memory");
			goto done;
		}
		it = json_object_get(root, "config");
		blobs[n].digest =
		    json_string_value(json_object_get(it, "digest"));
		blobs[n++].size =
		    json_integer_value(json_object_get(it, "size"));
		json_array_foreach(arr, i, it)
		{
			blobs[n].digest =
			    json_string_value(json_object_get(it, "digest"));
			blobs[n++].size =
			    json_integer_value(json_object_get(it, "size"));
		}
		rc = te_registry_blobs_copy(&got, dst, drepo, src, srepo, blobs,
		                            n, parallel, err);
		*bytes += got;
		if (rc < 0)
			goto done;
	}
	rc = te_registry_manifest_put(put_dg, dst, drepo, tag, mt, body.ptr,
	                              body.len, err);
	if (rc < 0)
		goto done;
	if (strcmp(put_dg, dg) != 0) {
		rc = te_error_set(err, TE_ERROR, "digest changed in transit");
		goto done;
	}
	memcpy(dg_out, dg, TE_DIGEST_STR_MAX);
done:
	free(blobs);
	json_decref(root);
	te_buf_dispose(&body);
	return rc;
}

static int read_file(te_buf *b, const char *path, te_error *err)
{
	FILE *f = fopen(path, "rb");
	char chunk[65536];
	size_t n;
	int rc = 0;

	if (!f)
		return te_error_set(err, TE_EIO, "cannot open %s", path);
	while (rc == 0 && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		rc = te_buf_put(b, chunk, n, err);
	fclose(f);
	return rc;
}

static void sha256_hex(char out[72], const void *data, size_t len)
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	size_t i;

	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	memcpy(out, "sha256:", 7);
	for (i = 0; i < 32; i++)
		snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
}

static int usage(void)
{
	fprintf(stderr,
	        "usage: registry_probe [-v] [-j N] copy SRCHOST SRCREPO REF "
	        "DSTHOST DSTREPO TAG\n"
	        "       registry_probe get-manifest|put-blob|get-blob|"
	        "blob-exists HOST REPO ARG\n"
	        "       registry_probe mount HOST REPO DIGEST FROMREPO\n");
	return 2;
}

int main(int argc, char **argv)
{
	te_error err = TE_ERROR_INIT;
	te_registry *a = NULL, *b = NULL;
	te_buf buf = TE_BUF_INIT(256u * 1024 * 1024);
	int parallel = 0, rc = 0, ai = 1;
	const char *cmd;

	while (ai < argc && argv[ai][0] == '-') {
		if (strcmp(argv[ai], "-v") == 0) {
			verbose = 1;
			ai++;
		} else if (strcmp(argv[ai], "-j") == 0 && ai + 1 < argc) {
			parallel = atoi(argv[ai + 1]);
			ai += 2;
		} else {
			return usage();
		}
	}
	if (argc - ai < 4)
		return usage();
	cmd = argv[ai];
	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = open_reg(&a, argv[ai + 1], &err);
	if (rc < 0)
		goto done;
	if (strcmp(cmd, "copy") == 0 && argc - ai == 7) {
		char dg[TE_DIGEST_STR_MAX] = "";
		uint64_t bytes = 0;
		struct timespec t0, t1;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		rc = open_reg(&b, argv[ai + 4], &err);
		if (rc == 0)
			rc = copy_image(a, argv[ai + 2], argv[ai + 3], b,
			                argv[ai + 5], argv[ai + 6], parallel,
			                &bytes, dg, &err);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (rc == 0)
			printf("copied %llu bytes %s in %.3f s\n",
			       (unsigned long long)bytes, dg,
			       (double)(t1.tv_sec - t0.tv_sec) +
			           (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	} else if (strcmp(cmd, "get-manifest") == 0 && argc - ai == 4) {
		char mt[128], dg[TE_DIGEST_STR_MAX];

		rc = te_registry_manifest_get(&buf, mt, dg, a, argv[ai + 2],
		                              argv[ai + 3], &err);
		if (rc == 0)
			printf("%s %s %zu\n", mt, dg, buf.len);
	} else if (strcmp(cmd, "put-blob") == 0 && argc - ai == 4) {
		char dg[72];

		rc = read_file(&buf, argv[ai + 3], &err);
		sha256_hex(dg, buf.ptr, buf.len);
		if (rc == 0)
			rc = te_registry_blob_put(a, argv[ai + 2], dg, buf.ptr,
			                          buf.len, &err);
		if (rc == 0)
			printf("%s\n", dg);
	} else if (strcmp(cmd, "get-blob") == 0 && argc - ai == 4) {
		rc = te_registry_blob_get(&buf, a, argv[ai + 2], argv[ai + 3],
		                          &err);
		if (rc == 0)
			printf("%zu\n", buf.len);
	} else if (strcmp(cmd, "blob-exists") == 0 && argc - ai == 4) {
		bool ex = false;

		rc = te_registry_blob_exists(&ex, a, argv[ai + 2], argv[ai + 3],
		                             &err);
		if (rc == 0)
			printf("%s\n", ex ? "yes" : "no");
	} else if (strcmp(cmd, "mount") == 0 && argc - ai == 5) {
		bool m = false;

		rc = te_registry_blob_mount(&m, a, argv[ai + 2], argv[ai + 3],
		                            argv[ai + 4], &err);
		if (rc == 0)
			printf("%s\n", m ? "mounted" : "not-mounted");
	} else {
		rc = usage();
		goto out;
	}
done:
	if (rc < 0)
		fprintf(stderr, "registry_probe: %s (%s)\n", err.msg,
		        te_code_str(err.code));
	rc = rc == 0                    ? 0
	     : err.code == TE_ENOTFOUND ? 3
	     : err.code == TE_EAUTH     ? 4
	                                : 1;
out:
	te_buf_dispose(&buf);
	te_registry_free(a);
	te_registry_free(b);
	curl_global_cleanup();
	return rc;
}

/*
 * apiclient.c - POST an export request to tagexport-server (apiclient.h).
 */
#include "tagexport/apiclient.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "tagexport/buf.h"
#include "tagexport/hook.h"
#include "tagexport/mirror.h"

#define API_TOKEN_MAX 4096
#define API_REPLY_MAX (64 * 1024)
#define API_TIMEOUT_DEFAULT_MS 5000L

/* Copy s into out (cap bytes with the NUL), printable ASCII only. */
static void printable(char *out, size_t cap, const char *s)
{
	size_t i = 0;

	for (; s && *s && i + 1 < cap; s++)
		out[i++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
	out[i] = '\0';
}

static const char *json_str(json_t *root, const char *key)
{
	return json_string_value(json_object_get(root, key));
}

int te_api_parse_reply(te_api_reply *out, long status, const char *body,
                       size_t len, te_error *err)
{
	json_t *root = NULL;
	char msg[160] = "";
	const char *v;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (body && len)
		root = json_loadb(body, len, 0, NULL);
	if (root && json_is_object(root) && (v = json_str(root, "error")))
		printable(msg, sizeof(msg), v);
	if (status == 202 && root && (v = json_str(root, "job")) && *v) {
		out->queued = true;
		printable(out->job, sizeof(out->job), v);
		v = json_str(root, "status");
		printable(out->status, sizeof(out->status), v ? v : "queued");
	} else if (status == 200 && root && (v = json_str(root, "ignored"))) {
		printable(out->ignored, sizeof(out->ignored), v);
	} else if (status == 401 || status == 403) {
		rc = te_error_set(err, TE_EAUTH,
		                  "server answered %ld: %s (check the token "
		                  "file)",
		                  status, msg[0] ? msg : "unauthorized");
	} else {
		if (!msg[0])
			snprintf(msg, sizeof(msg), "%s",
			         status >= 200 && status < 300
			             ? "unexpected answer"
			             : "no error message");
		rc = te_error_set(err, status >= 500 ? TE_ENET : TE_EINVALID,
		                  "server answered %ld: %s", status, msg);
	}
	json_decref(root);
	return rc;
}

/* The token file minus trailing whitespace; wiped by the caller. */
static int read_token(char *buf, size_t cap, const char *path, te_error *err)
{
	size_t len = 0;
	ssize_t n;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return te_error_set_errno(err, TE_EIO, errno,
		                          "cannot read token file %s", path);
	while (len < cap - 1) {
		n = read(fd, buf + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = te_error_set_errno(err, TE_EIO, errno,
			                        "cannot read token file %s",
			                        path);
			goto done;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len == cap - 1) {
		rc = te_error_set(err, TE_EINVALID, "token file %s is too long",
		                  path);
		goto done;
	}
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r' ||
	               buf[len - 1] == ' ' || buf[len - 1] == '\t'))
		len--;
	buf[len] = '\0';
	if (!len || strpbrk(buf, "\r\n"))
		rc = te_error_set(err, TE_EINVALID,
		                  "token file %s is empty or has several lines",
		                  path);
done:
	close(fd);
	return rc;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *payload)
{
	te_buf *b = payload;
	size_t n = size * nmemb;

	/* Past the cap: a short count makes curl fail the transfer. */
	if (te_buf_put(b, data, n, NULL) < 0)
		return 0;
	return n;
}

static bool http_url(const char *s)
{
	return !strncmp(s, "http://", 7) || !strncmp(s, "https://", 8);
}

int te_api_submit_export(te_api_reply *out, const te_api_opts *opts,
                         const char *project, const char *tag,
                         const char *commit, te_error *err)
{
	te_buf url = TE_BUF_INIT(8192), body = TE_BUF_INIT(API_REPLY_MAX);
	te_buf authz = TE_BUF_INIT(API_TOKEN_MAX + 64);
	char token[API_TOKEN_MAX], errbuf[CURL_ERROR_SIZE] = "";
	char stem[TE_HOOK_STEM_LEN + 1], ref[TE_MIRROR_TAG_MAX + 16];
	struct curl_slist *headers = NULL;
	json_t *req = NULL;
	char *payload = NULL;
	CURL *curl = NULL;
	CURLcode cc;
	long status = 0, timeout;
	size_t slen;
	int rc;

	memset(out, 0, sizeof(*out));
	token[0] = '\0';
	if (!opts || !opts->server || !http_url(opts->server) ||
	    !opts->token_file) {
		rc = te_error_set(err, TE_EINVALID,
		                  "the server must be an http:// or https:// "
		                  "URL, with a token file");
		goto done;
	}
	if (!te_hook_project_name_valid(project) || !te_mirror_tag_valid(tag) ||
	    te_hook_job_stem(stem, commit, tag, NULL) < 0) {
		rc = te_error_set(err, TE_EINVALID,
		                  "invalid project, tag or commit");
		goto done;
	}
	snprintf(ref, sizeof(ref), "refs/tags/%s", tag);
	slen = strlen(opts->server);
	while (slen && opts->server[slen - 1] == '/')
		slen--;
	if ((rc = te_buf_put(&url, opts->server, slen, err)) < 0 ||
	    (rc = te_buf_printf(&url, err, "/api/v1/projects/%s/exports",
	                        project)) < 0)
		goto done;
	req = json_pack("{s:s,s:s#}", "ref", ref, "commit", commit, (int)40);
	payload = req ? json_dumps(req, JSON_COMPACT) : NULL;
	if (!payload) {
		rc = te_error_set(err, TE_ENOMEM, "cannot build the request");
		goto done;
	}
	if ((rc = read_token(token, sizeof(token), opts->token_file, err)) <
	        0 ||
	    (rc = te_buf_printf(&authz, err, "Authorization: Bearer %s",
	                        token)) < 0)
		goto done;
	headers = curl_slist_append(headers, authz.ptr);
	if (headers)
		headers = curl_slist_append(headers,
		                            "Content-Type: application/json");
	curl = curl_easy_init();
	if (!headers || !curl) {
		rc = te_error_set(err, TE_ENOMEM, "cannot set up the request");
		goto done;
	}
	timeout =
	    opts->timeout_ms > 0 ? opts->timeout_ms : API_TIMEOUT_DEFAULT_MS;
	curl_easy_setopt(curl, CURLOPT_URL, url.ptr);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, timeout);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, payload);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(payload));
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "tagexport-hook");
	if (opts->skip_tls_verify) {
		curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	cc = curl_easy_perform(curl);
	if (cc != CURLE_OK) {
		char why[CURL_ERROR_SIZE];
		printable(why, sizeof(why),
		          errbuf[0] ? errbuf : curl_easy_strerror(cc));
		rc = te_error_set(err, TE_ENET, "server unreachable (%s)", why);
		goto done;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	rc = te_api_parse_reply(out, status, body.ptr, body.len, err);
done:
	explicit_bzero(token, sizeof(token));
	if (authz.cap)
		explicit_bzero(authz.ptr, authz.cap);
	te_buf_dispose(&authz);
	if (headers && headers->data)
		explicit_bzero(headers->data, strlen(headers->data));
	curl_slist_free_all(headers);
	if (curl)
		curl_easy_cleanup(curl);
	free(payload);
	json_decref(req);
	te_buf_dispose(&url);
	te_buf_dispose(&body);
	return rc;
}

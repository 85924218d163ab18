/*
 * registry_copy.c - te_registry_blobs_copy: make blobs present in a
 * destination repository, streaming them from a source registry.
 *
 * Per blob: HEAD in the destination (skip if present); on the same
 * registry try a cross-repository mount; otherwise POST an upload session
 * and run the source GET and the destination upload as two easy handles
 * in one curl multi handle.  The upload is one monolithic PUT with
 * Content-Length, or -- when the POST announced OCI-Chunk-Min-Length or
 * the registry refused a monolithic PUT -- PATCHes of one chunk each
 * (Content-Range, newest Location every time) and an empty PUT ?digest=.
 *
 * A failed try (connection reset, truncated body, 429/5xx, a retryable
 * error code) releases everything, cancels its session and restarts the
 * blob from the source after the te_reg__retry_decide delay; the other
 * slots keep streaming meanwhile.
 *
 * Invariants of one stream:
 *  1. Bytes go source -> ring -> destination; the ring has a fixed size,
 *     so memory is bounded by parallel * TE_REG_STREAM_BUF.
 *  2. A full ring pauses the GET (CURL_WRITEFUNC_PAUSE), an empty one
 *     pauses the PUT (CURL_READFUNC_PAUSE); the loop un-pauses them with
 *     curl_easy_pause once the other side has moved.
 *  3. Every received byte is hashed; the last byte of the blob is held
 *     back from the PUT until the sha256 and size have been verified, so
 *     the registry can never commit unverified content.
 *     Chunked: nothing is committed before the final PUT, which starts
 *     only after the last PATCH, i.e. after verification.
 *  4. A failure that is not retried stops everything; every upload
 *     session still open is cancelled with DELETE.
 */
#include "registry_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

struct stream {
	const te_blob_desc *blob; /* NULL: a free slot */
	bool live;                /* a try is running */
	int attempt;
	int64_t first_ms; /* when the first try began */
	int64_t retry_at; /* monotonic ms of the next try, when !live */
	bool reauthed;    /* one 401 refresh per blob */
	/* one try */
	char *session; /* newest upload Location, cancelled on failure */
	char *get_url;
	char *put_url;
	CURL *get, *put;
	struct curl_slist *get_hdrs, *put_hdrs;
	struct te_reg_resp get_resp, put_resp;
	te_buf get_err, put_err;
	EVP_MD_CTX *md;
	unsigned char *ring;
	size_t head; /* next byte to send */
	size_t fill; /* bytes buffered */
	uint64_t in, out;
	bool chunked;        /* PATCH chunks, then an empty PUT */
	int64_t chunk;       /* chunk size */
	uint64_t chunk_left; /* bytes the running PATCH still takes */
	bool finishing;      /* the final PUT is running */
	bool get_paused, put_paused;
	bool get_done, put_done, verified, failed;
	/* why the try failed */
	bool fail_get;
	long fail_status;
	int fail_curl;
	te_error err;
};

struct copy {
	te_registry *dst, *src;
	const char *dst_repo, *src_repo;
	char dst_scope[600], src_scope[600];
	CURLM *multi;
};

static void stream_fail(struct stream *s, te_code code, const char *msg)
{
	s->failed = true;
	te_error_set(&s->err, code, "%s", msg);
}

/* All bytes are in: check the sha256 (invariant 3). */
static bool verify(struct stream *s)
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	char dg[TE_DIGEST_STR_MAX];

	EVP_DigestFinal_ex(s->md, md, &mdlen);
	te_reg__digest_fmt(dg, md);
	if (strcmp(dg, s->blob->digest) != 0) {
		char msg[200];

		snprintf(msg, sizeof(msg), "source content has digest %s", dg);
		stream_fail(s, TE_EINVALID, msg);
		return false;
	}
	s->verified = true;
	return true;
}

static size_t get_write(char *data, size_t size, size_t n, void *payload)
{
	struct stream *s = payload;
	size_t len = size * n, tail, first;
	uint64_t want = (uint64_t)s->blob->size;
	te_error e = TE_ERROR_INIT;

	if (s->failed)
		return 0;
	if (s->get_resp.status != 200) {
		(void)te_buf_put(&s->get_err, data, len, &e);
		return len;
	}
	if (len > TE_REG_STREAM_BUF) {
		stream_fail(s, TE_ERROR, "source chunk larger than buffer");
		return 0;
	}
	if (len > TE_REG_STREAM_BUF - s->fill) {
		s->get_paused = true;
		return CURL_WRITEFUNC_PAUSE;
	}
	if (s->in + len > want) {
		stream_fail(s, TE_EINVALID,
		            "source sent more bytes than the "
		            "blob size");
		return 0;
	}
	EVP_DigestUpdate(s->md, data, len);
	tail = (s->head + s->fill) % TE_REG_STREAM_BUF;
	first = TE_REG_STREAM_BUF - tail;
	if (first > len)
		first = len;
	memcpy(s->ring + tail, data, first);
	memcpy(s->ring, data + first, len - first);
	s->fill += len;
	s->in += len;
	if (s->in == want && !verify(s))
		return 0;
	return len;
}

/* How many buffered bytes may go out now.  Monolithic: the last byte
 * waits for verification (invariant 3); chunked: nothing is committed
 * before the final PUT, which waits for it, but a PATCH takes no more
 * than its chunk. */
static size_t sendable(const struct stream *s)
{
	if (s->chunked)
		return (uint64_t)s->fill < s->chunk_left
		           ? s->fill
		           : (size_t)s->chunk_left;
	if (s->verified)
		return s->fill;
	if (s->fill && s->out + s->fill >= (uint64_t)s->blob->size)
		return s->fill - 1;
	return s->fill;
}

/* The running request has all of its body. */
static bool body_complete(const struct stream *s)
{
	if (s->chunked)
		return s->finishing || s->chunk_left == 0;
	return s->verified && s->out == (uint64_t)s->blob->size;
}

static size_t put_read(char *dst, size_t size, size_t n, void *payload)
{
	struct stream *s = payload;
	size_t want = size * n, avail = sendable(s), first;

	if (s->failed)
		return CURL_READFUNC_ABORT;
	if (avail == 0) {
		if (body_complete(s))
			return 0;
		s->put_paused = true;
		return CURL_READFUNC_PAUSE;
	}
	if (want > avail)
		want = avail;
	first = TE_REG_STREAM_BUF - s->head;
	if (first > want)
		first = want;
	memcpy(dst, s->ring + s->head, first);
	memcpy(dst + first, s->ring, want - first);
	s->head = (s->head + want) % TE_REG_STREAM_BUF;
	s->fill -= want;
	s->out += want;
	if (s->chunked)
		s->chunk_left -= want;
	return want;
}

static size_t put_write(char *data, size_t size, size_t n, void *payload)
{
	struct stream *s = payload;
	te_error e = TE_ERROR_INIT;

	(void)te_buf_put(&s->put_err, data, size * n, &e);
	return size * n;
}

/* End a try: handles, buffers and (unless committed) the session go;
 * the slot keeps its blob and retry state. */
static void stream_release(struct copy *c, struct stream *s)
{
	if (s->get) {
		curl_multi_remove_handle(c->multi, s->get);
		curl_easy_cleanup(s->get);
	}
	if (s->put) {
		curl_multi_remove_handle(c->multi, s->put);
		curl_easy_cleanup(s->put);
	}
	if (s->failed || !s->put_done)
		te_reg__upload_cancel(c->dst, s->session, c->dst_repo);
	curl_slist_free_all(s->get_hdrs);
	curl_slist_free_all(s->put_hdrs);
	te_buf_dispose(&s->get_err);
	te_buf_dispose(&s->put_err);
	EVP_MD_CTX_free(s->md);
	free(s->ring);
	free(s->session);
	free(s->put_url);
	free(s->get_url);
	s->session = s->put_url = s->get_url = NULL;
	s->get = s->put = NULL;
	s->get_hdrs = s->put_hdrs = NULL;
	s->md = NULL;
	s->ring = NULL;
	s->head = s->fill = 0;
	s->in = s->out = 0;
	s->chunked = s->finishing = false;
	s->chunk = 0;
	s->chunk_left = 0;
	s->get_paused = s->put_paused = false;
	s->get_done = s->put_done = s->verified = s->failed = false;
	s->live = false;
}

static void stream_free(struct copy *c, struct stream *s)
{
	stream_release(c, s);
	memset(s, 0, sizeof(*s));
}

#define SET(h, opt, val)                                                       \
	do {                                                                   \
		if (cc == CURLE_OK)                                            \
			cc = curl_easy_setopt(h, opt, val);                    \
	} while (0)

/*
 * Point the upload handle at its next request: the monolithic PUT, a
 * PATCH of the next chunk to the newest Location, or the final empty
 * PUT ?digest=.  Headers are rebuilt each time: credentials only go to
 * the registry's own origin.
 */
static int put_next(struct copy *c, struct stream *s, te_error *err)
{
	struct curl_slist *l;
	CURLcode cc = CURLE_OK;
	uint64_t left = (uint64_t)s->blob->size - s->out;
	char range[96];
	bool patch = s->chunked && left > 0;
	int rc;

	curl_multi_remove_handle(c->multi, s->put);
	curl_slist_free_all(s->put_hdrs);
	s->put_hdrs = NULL;
	free(s->put_url);
	s->put_url = NULL;
	if (patch) {
		s->chunk_left =
		    left < (uint64_t)s->chunk ? left : (uint64_t)s->chunk;
		s->put_url = te_strdup(s->session, err);
		rc = s->put_url ? 0 : TE_ENOMEM;
	} else {
		s->finishing = s->chunked;
		rc = te_reg__url_add_digest(&s->put_url, s->session,
		                            s->blob->digest, err);
	}
	if (rc < 0)
		return rc;
	SET(s->put, CURLOPT_USERNAME, NULL);
	SET(s->put, CURLOPT_PASSWORD, NULL);
	SET(s->put, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
	if (cc != CURLE_OK)
		return te_error_set(err, TE_ERROR, "curl setup failed");
	rc = te_reg__auth_apply(s->put, &s->put_hdrs, c->dst, s->put_url,
	                        c->dst_scope, err);
	if (rc < 0)
		return rc;
	l = curl_slist_append(s->put_hdrs, "Expect:");
	if (l)
		l = curl_slist_append(s->put_hdrs = l,
		                      "Content-Type: application/octet-stream");
	if (l && patch) {
		snprintf(range, sizeof(range), "Content-Range: %llu-%llu",
		         (unsigned long long)s->out,
		         (unsigned long long)(s->out + s->chunk_left - 1));
		l = curl_slist_append(s->put_hdrs = l, range);
	}
	if (!l)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	s->put_hdrs = l;
	memset(&s->put_resp, 0, sizeof(s->put_resp));
	te_buf_clear(&s->put_err);
	SET(s->put, CURLOPT_URL, s->put_url);
	SET(s->put, CURLOPT_UPLOAD, 1L);
	SET(s->put, CURLOPT_CUSTOMREQUEST, patch ? "PATCH" : NULL);
	SET(s->put, CURLOPT_INFILESIZE_LARGE,
	    (curl_off_t)(patch        ? s->chunk_left
	                 : s->chunked ? 0
	                              : (uint64_t)s->blob->size));
	SET(s->put, CURLOPT_HTTPHEADER, s->put_hdrs);
	if (cc != CURLE_OK)
		return te_error_set(err, TE_ERROR, "curl setup: %s",
		                    curl_easy_strerror(cc));
	s->put_paused = false;
	if (curl_multi_add_handle(c->multi, s->put) != CURLM_OK)
		return te_error_set(err, TE_ERROR,
		                    "curl_multi_add_handle failed");
	return 0;
}

static int stream_start(struct copy *c, struct stream *s, te_error *err)
{
	te_buf url = TE_BUF_INIT(4096);
	const te_blob_desc *b = s->blob;
	CURLcode cc = CURLE_OK;
	bool created = false;
	int64_t chunk_min = 0;
	int rc;

	s->live = true;
	s->attempt++;
	te_buf_init(&s->get_err, TE_REG_ERRBODY_MAX);
	te_buf_init(&s->put_err, TE_REG_ERRBODY_MAX);
	s->md = EVP_MD_CTX_new();
	s->ring = malloc(TE_REG_STREAM_BUF);
	s->get = curl_easy_init();
	s->put = curl_easy_init();
	if (!s->md || !s->ring || !s->get || !s->put ||
	    !EVP_DigestInit_ex(s->md, EVP_sha256(), NULL)) {
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
		goto done;
	}
	rc = te_reg__upload_start(&s->session, &created, &chunk_min, c->dst,
	                          c->dst_repo, NULL, c->dst_scope, err);
	if (rc == 0 && created)
		rc = te_error_set(err, TE_ERROR,
		                  "POST blob upload: unexpected 201");
	if (rc == 0)
		rc = te_reg__ready(c->src, err);
	if (rc == 0)
		rc =
		    te_buf_printf(&url, err, "%s/v2/%s/blobs/%s",
		                  te_reg__base(c->src), c->src_repo, b->digest);
	if (rc < 0)
		goto done;
	s->chunked = b->size > 0 && (c->dst->chunked || chunk_min > 0);
	s->chunk = chunk_min > 0 ? chunk_min : TE_REG_CHUNK_DEFAULT;
	if (s->chunk > TE_REG_CHUNK_MAX) {
		rc = te_error_set(err, TE_EUNSUPPORTED,
		                  "registry wants chunks of %lld bytes",
		                  (long long)chunk_min);
		goto done;
	}
	s->get_url = te_buf_detach(&url);
	rc = te_reg__easy_setup(s->get, c->src, err);
	if (rc == 0)
		rc = te_reg__easy_setup(s->put, c->dst, err);
	if (rc == 0)
		rc = te_reg__auth_apply(s->get, &s->get_hdrs, c->src,
		                        s->get_url, c->src_scope, err);
	if (rc < 0)
		goto done;
	SET(s->get, CURLOPT_URL, s->get_url);
	SET(s->get, CURLOPT_FOLLOWLOCATION, 1L);
	SET(s->get, CURLOPT_HTTPHEADER, s->get_hdrs);
	SET(s->get, CURLOPT_HEADERFUNCTION, te_reg__header_cb);
	SET(s->get, CURLOPT_HEADERDATA, &s->get_resp);
	SET(s->get, CURLOPT_WRITEFUNCTION, get_write);
	SET(s->get, CURLOPT_WRITEDATA, s);
	SET(s->get, CURLOPT_PRIVATE, s);
	SET(s->put, CURLOPT_READFUNCTION, put_read);
	SET(s->put, CURLOPT_READDATA, s);
	SET(s->put, CURLOPT_HEADERFUNCTION, te_reg__header_cb);
	SET(s->put, CURLOPT_HEADERDATA, &s->put_resp);
	SET(s->put, CURLOPT_WRITEFUNCTION, put_write);
	SET(s->put, CURLOPT_WRITEDATA, s);
	SET(s->put, CURLOPT_PRIVATE, s);
	if (cc != CURLE_OK) {
		rc = te_error_set(err, TE_ERROR, "curl setup: %s",
		                  curl_easy_strerror(cc));
		goto done;
	}
	if (curl_multi_add_handle(c->multi, s->get) != CURLM_OK) {
		rc =
		    te_error_set(err, TE_ERROR, "curl_multi_add_handle failed");
		goto done;
	}
	rc = put_next(c, s, err);
done:
	te_buf_dispose(&url);
	if (rc < 0)
		te_error_wrap(err, "%s", b->digest);
	return rc;
}

#undef SET

static void record_failure(struct stream *s, bool is_get, long status,
                           CURLcode res)
{
	s->failed = true;
	s->fail_get = is_get;
	s->fail_status = status;
	s->fail_curl = (int)res;
}

/* A transfer of s finished: record success, the next request or the
 * error. */
static void stream_done(struct copy *c, struct stream *s, CURL *h, CURLcode res)
{
	char what[800];
	bool is_get = h == s->get;
	struct te_reg_resp *resp = is_get ? &s->get_resp : &s->put_resp;
	te_buf *body = is_get ? &s->get_err : &s->put_err;
	te_registry *reg = is_get ? c->src : c->dst;
	const char *verb = is_get                        ? "GET"
	                   : s->chunked && !s->finishing ? "PATCH"
	                                                 : "PUT";
	te_error e = TE_ERROR_INIT;

	snprintf(what, sizeof(what), "%s blob %s/%s@%s", verb,
	         te_registry_host(reg), is_get ? c->src_repo : c->dst_repo,
	         s->blob->digest);
	if (s->failed) {
		if (!s->fail_status && !s->fail_curl)
			s->fail_get = is_get;
		te_error_wrap(&s->err, "%s", what);
		return;
	}
	if (res != CURLE_OK && !(resp->status && resp->status != 200 &&
	                         resp->status != 201 && resp->status != 202)) {
		record_failure(s, is_get, 0, res);
		te_error_set(&s->err, TE_ENET, "%s: %s", what,
		             curl_easy_strerror(res));
		return;
	}
	if (is_get) {
		if (resp->status == 200 && !s->verified &&
		    s->in == (uint64_t)s->blob->size && !verify(s)) {
			te_error_wrap(&s->err, "%s", what);
			return;
		}
		if (resp->status != 200) {
			record_failure(s, true, resp->status, CURLE_OK);
			te_reg__http_error(&s->err, resp->status, body->ptr,
			                   body->len, what);
		} else if (!s->verified) {
			/* a short body: the connection died mid-blob */
			record_failure(s, true, 0, CURLE_PARTIAL_FILE);
			te_error_set(&s->err, TE_ENET,
			             "%s: got %llu bytes, expected %lld", what,
			             (unsigned long long)s->in,
			             (long long)s->blob->size);
		} else {
			s->get_done = true;
		}
		return;
	}
	if (s->chunked && !s->finishing && resp->status == 202) {
		char *next = NULL;

		if (resp->location[0] &&
		    te_reg__resolve_location(&next, s->session, resp->location,
		                             &e) < 0) {
			record_failure(s, false, 0, CURLE_OK);
			te_error_set(&s->err, e.code, "%s: %s", what, e.msg);
			return;
		}
		if (next) {
			free(s->session);
			s->session = next;
		}
		if (put_next(c, s, &e) < 0) {
			record_failure(s, false, 0, CURLE_OK);
			te_error_set(&s->err, e.code, "%s: %s", what, e.msg);
		}
		return;
	}
	if (resp->status != 201) {
		record_failure(s, false, resp->status, CURLE_OK);
		te_reg__http_error(&s->err, resp->status, body->ptr, body->len,
		                   what);
	} else if (resp->docker_digest[0] &&
	           strcmp(resp->docker_digest, s->blob->digest) != 0) {
		record_failure(s, false, 0, CURLE_OK);
		te_error_set(&s->err, TE_EINVALID,
		             "%s: registry stored '%.80s'", what,
		             resp->docker_digest);
	} else {
		s->put_done = true;
	}
}

/* Un-pause whichever side can move again; true if something was kicked. */
static bool stream_kick(struct stream *s)
{
	bool kicked = false;

	if (s->get_paused && !s->get_done &&
	    TE_REG_STREAM_BUF - s->fill >= (size_t)TE_REG_CURL_BUF) {
		s->get_paused = false;
		curl_easy_pause(s->get, CURLPAUSE_CONT);
		kicked = true;
	}
	if (s->put_paused && !s->put_done &&
	    (sendable(s) > 0 || s->failed || body_complete(s))) {
		s->put_paused = false;
		curl_easy_pause(s->put, CURLPAUSE_CONT);
		kicked = true;
	}
	return kicked;
}

/* Whether a failed monolithic PUT says "send chunks instead". */
static bool wants_chunks(long status)
{
	return status == 400 || status == 405 || status == 411 ||
	       status == 413 || status == 416 || status == 501;
}

/*
 * A try of s failed: decide between a restart (a new session, the blob
 * streamed again from the source: *retry) and giving up.  A 401 gets one
 * re-authentication, a refused monolithic PUT one switch to chunks;
 * everything else follows te_reg__retry_decide.
 */
static void stream_retry(bool *retry, struct copy *c, struct stream *s)
{
	struct te_reg_resp *resp = s->fail_get ? &s->get_resp : &s->put_resp;
	te_buf *body = s->fail_get ? &s->get_err : &s->put_err;
	te_registry *reg = s->fail_get ? c->src : c->dst;
	struct te_reg_retry_in in;
	char code[64];
	long delay;

	*retry = false;
	if (s->fail_status == 401 && !s->reauthed) {
		s->reauthed = true;
		if (te_reg__auth_refresh(reg, resp->www_auth,
		                         s->fail_get ? c->src_scope
		                                     : c->dst_scope)) {
			*retry = true;
			s->retry_at = te_reg__now_ms();
			return;
		}
	}
	if (!s->fail_get && !s->chunked && !c->dst->chunked &&
	    wants_chunks(s->fail_status)) {
		te_log_emit(te_reg__log(c->dst), TE_LOG_DEBUG,
		            "%s: monolithic upload refused (%ld), switching to "
		            "chunked uploads",
		            te_registry_host(c->dst), s->fail_status);
		c->dst->chunked = true;
		*retry = true;
		s->retry_at = te_reg__now_ms();
		return;
	}
	te_reg__error_code(code, body->ptr, body->len);
	memset(&in, 0, sizeof(in));
	in.attempt = s->attempt;
	in.status = s->fail_status;
	in.curl_code = s->fail_curl;
	in.error_code = code;
	in.retry_after = resp->retry_after;
	in.now = time(NULL);
	in.elapsed_ms = (long)(te_reg__now_ms() - s->first_ms);
	in.jitter = te_reg__jitter();
	delay = te_reg__retry_decide(&reg->retry, &in);
	if (delay < 0)
		return;
	te_log_emit(te_reg__log(c->dst), TE_LOG_DEBUG,
	            "retrying %s in %ld ms (try %d): %s", s->blob->digest,
	            delay, s->attempt, s->err.msg);
	*retry = true;
	s->retry_at = te_reg__now_ms() + delay;
}

/* HEAD / mount; *need_stream tells whether bytes must move. */
static int blob_prepare(bool *need_stream, struct copy *c,
                        const te_blob_desc *b, te_error *err)
{
	bool exists = false, mounted = false;
	int rc;

	*need_stream = false;
	if (!te_reg__digest_valid(b->digest) || b->size < 0)
		return te_error_set(err, TE_EINVALID,
		                    "invalid blob descriptor '%.100s'",
		                    b->digest ? b->digest : "");
	rc = te_reg__ready(c->src, err);
	if (rc == 0)
		rc = te_reg__ready(c->dst, err);
	if (rc < 0)
		return rc;
	/* On one registry a mount answers for a blob that is already there
	 * too, so it goes first and saves a round trip per layer. */
	if (strcmp(te_reg__base(c->src), te_reg__base(c->dst)) == 0 &&
	    strcmp(c->src_repo, c->dst_repo) != 0) {
		rc = te_registry_blob_mount(&mounted, c->dst, c->dst_repo,
		                            b->digest, c->src_repo, err);
		if (rc < 0 || mounted) {
			if (mounted)
				te_log_emit(te_reg__log(c->dst), TE_LOG_DEBUG,
				            "mounted %s", b->digest);
			return rc;
		}
	}
	rc = te_registry_blob_exists(&exists, c->dst, c->dst_repo, b->digest,
	                             err);
	if (rc < 0 || exists)
		return rc;
	*need_stream = true;
	return 0;
}

/* Start every slot whose retry time has come; *wait_ms gets the time
 * to the next pending one (or stays). */
static int start_due(bool *kicked, long *wait_ms, struct copy *c,
                     struct stream *slots, size_t n, te_error *err)
{
	int64_t now = te_reg__now_ms();
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		struct stream *s = &slots[i];

		if (!s->blob || s->live)
			continue;
		if (s->retry_at > now) {
			if (s->retry_at - now < *wait_ms)
				*wait_ms = (long)(s->retry_at - now);
			continue;
		}
		te_error_clear(&s->err);
		rc = stream_start(c, s, err);
		if (rc < 0)
			return rc;
		*kicked = true;
	}
	return 0;
}

int te_registry_blobs_copy(uint64_t *bytes_copied, te_registry *dst,
                           const char *dst_repo, te_registry *src,
                           const char *src_repo, const te_blob_desc *blobs,
                           size_t nblobs, int parallel, te_error *err)
{
	struct copy c;
	struct stream *slots = NULL;
	uint64_t copied = 0;
	size_t next = 0, active = 0, i;
	int rc = 0, n;

	if (bytes_copied)
		*bytes_copied = 0;
	memset(&c, 0, sizeof(c));
	c.dst = dst;
	c.src = src;
	c.dst_repo = dst_repo;
	c.src_repo = src_repo;
	if (parallel <= 0)
		parallel = 4;
	if (parallel > 32)
		parallel = 32;
	n = snprintf(c.dst_scope, sizeof(c.dst_scope),
	             "repository:%s:pull,push", dst_repo);
	if (n < 0 || (size_t)n >= sizeof(c.dst_scope) ||
	    snprintf(c.src_scope, sizeof(c.src_scope), "repository:%s:pull",
	             src_repo) >= (int)sizeof(c.src_scope))
		return te_error_set(err, TE_EINVALID,
		                    "repository name too long");
	slots = calloc((size_t)parallel, sizeof(*slots));
	c.multi = curl_multi_init();
	if (!slots || !c.multi) {
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
		goto done;
	}
	curl_multi_setopt(c.multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
	for (;;) {
		CURLMsg *msg;
		bool kicked = false;
		long wait_ms = 1000;
		int running = 0, left;

		/* fill free slots with blobs that need bytes moved */
		for (i = 0; i < (size_t)parallel && next < nblobs; i++) {
			bool need = false;

			if (slots[i].blob)
				continue;
			while (next < nblobs && !need) {
				rc = blob_prepare(&need, &c, &blobs[next], err);
				if (rc < 0)
					goto done;
				if (!need)
					next++;
			}
			if (!need)
				break;
			slots[i].blob = &blobs[next];
			slots[i].first_ms = te_reg__now_ms();
			slots[i].retry_at = 0;
			next++;
			active++;
		}
		if (active == 0)
			break;
		rc = start_due(&kicked, &wait_ms, &c, slots, (size_t)parallel,
		               err);
		if (rc < 0)
			goto done;
		if (curl_multi_perform(c.multi, &running) != CURLM_OK) {
			rc = te_error_set(err, TE_ERROR,
			                  "curl_multi_perform failed");
			goto done;
		}
		while ((msg = curl_multi_info_read(c.multi, &left))) {
			struct stream *s = NULL;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
			                  (char **)&s);
			if (s)
				stream_done(&c, s, msg->easy_handle,
				            msg->data.result);
		}
		for (i = 0; i < (size_t)parallel; i++) {
			struct stream *s = &slots[i];
			bool retry = false;

			if (!s->blob || !s->live)
				continue;
			if (s->failed) {
				stream_retry(&retry, &c, s);
				if (!retry) {
					rc = te_error_set(err, s->err.code,
					                  "%s", s->err.msg);
					if (s->attempt > 1)
						te_error_wrap(
						    err,
						    "gave up after %d tries",
						    s->attempt);
					goto done;
				}
				stream_release(&c, s);
				kicked = true;
				continue;
			}
			if (s->get_done && s->put_done) {
				copied += (uint64_t)s->blob->size;
				te_log_emit(te_reg__log(dst), TE_LOG_DEBUG,
				            "copied %s (%lld bytes)",
				            s->blob->digest,
				            (long long)s->blob->size);
				stream_free(&c, s);
				active--;
				kicked = true;
				continue;
			}
			if (stream_kick(s))
				kicked = true;
		}
		if (!kicked)
			curl_multi_poll(c.multi, NULL, 0, (int)wait_ms, NULL);
	}
done:
	for (i = 0; slots && i < (size_t)parallel; i++)
		if (slots[i].blob)
			stream_free(&c, &slots[i]);
	free(slots);
	if (c.multi)
		curl_multi_cleanup(c.multi);
	if (bytes_copied)
		*bytes_copied = copied;
	return rc;
}

/*
 * registry_copy.c - te_registry_blobs_copy: make blobs present in a
 * destination repository, streaming them from a source registry.
 *
 * Per blob: HEAD in the destination (skip if present); on the same
 * registry try a cross-repository mount; otherwise POST an upload session
 * and run the source GET and the destination PUT (monolithic, with
 * Content-Length) as two easy handles in one curl multi handle.
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
 *  4. The first failure stops everything; every upload session still
 *     open is cancelled with DELETE.
 */
#include "registry_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

struct stream {
	const te_blob_desc *blob;
	char *session; /* upload Location, cancelled on failure */
	char *put_url;
	char *get_url;
	CURL *get, *put;
	struct curl_slist *get_hdrs, *put_hdrs;
	struct te_reg_resp get_resp, put_resp;
	te_buf get_err, put_err;
	EVP_MD_CTX *md;
	unsigned char *ring;
	size_t head; /* next byte to send */
	size_t fill; /* bytes buffered */
	uint64_t in, out;
	bool get_paused, put_paused;
	bool get_done, put_done, verified, failed;
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

/* How many buffered bytes may go out now (invariant 3). */
static size_t sendable(const struct stream *s)
{
	if (s->verified)
		return s->fill;
	if (s->fill && s->out + s->fill >= (uint64_t)s->blob->size)
		return s->fill - 1;
	return s->fill;
}

static size_t put_read(char *dst, size_t size, size_t n, void *payload)
{
	struct stream *s = payload;
	size_t want = size * n, avail = sendable(s), first;

	if (s->failed)
		return CURL_READFUNC_ABORT;
	if (avail == 0) {
		if (s->verified && s->out == (uint64_t)s->blob->size)
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
	return want;
}

static size_t put_write(char *data, size_t size, size_t n, void *payload)
{
	struct stream *s = payload;
	te_error e = TE_ERROR_INIT;

	(void)te_buf_put(&s->put_err, data, size * n, &e);
	return size * n;
}

static void stream_free(struct copy *c, struct stream *s)
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
	memset(s, 0, sizeof(*s));
}

#define SET(h, opt, val)                                                       \
	do {                                                                   \
		if (cc == CURLE_OK)                                            \
			cc = curl_easy_setopt(h, opt, val);                    \
	} while (0)

static int stream_start(struct copy *c, struct stream *s, const te_blob_desc *b,
                        te_error *err)
{
	te_buf url = TE_BUF_INIT(4096);
	struct curl_slist *l;
	CURLcode cc = CURLE_OK;
	bool created = false;
	int rc;

	memset(s, 0, sizeof(*s));
	s->blob = b;
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
	rc = te_reg__upload_start(&s->session, &created, c->dst, c->dst_repo,
	                          NULL, c->dst_scope, err);
	if (rc == 0 && created)
		rc = te_error_set(err, TE_ERROR,
		                  "POST blob upload: unexpected 201");
	if (rc == 0)
		rc = te_reg__url_add_digest(&s->put_url, s->session, b->digest,
		                            err);
	if (rc == 0)
		rc =
		    te_buf_printf(&url, err, "%s/v2/%s/blobs/%s",
		                  te_reg__base(c->src), c->src_repo, b->digest);
	if (rc < 0)
		goto done;
	s->get_url = te_buf_detach(&url);
	rc = te_reg__easy_setup(s->get, c->src, err);
	if (rc == 0)
		rc = te_reg__easy_setup(s->put, c->dst, err);
	if (rc == 0)
		rc = te_reg__auth_apply(s->get, &s->get_hdrs, c->src,
		                        s->get_url, c->src_scope, err);
	if (rc == 0)
		rc = te_reg__auth_apply(s->put, &s->put_hdrs, c->dst,
		                        s->put_url, c->dst_scope, err);
	if (rc < 0)
		goto done;
	l = curl_slist_append(s->put_hdrs, "Expect:");
	if (l)
		l = curl_slist_append(s->put_hdrs = l,
		                      "Content-Type: application/octet-stream");
	if (!l) {
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
		goto done;
	}
	s->put_hdrs = l;
	SET(s->get, CURLOPT_URL, s->get_url);
	SET(s->get, CURLOPT_FOLLOWLOCATION, 1L);
	SET(s->get, CURLOPT_HTTPHEADER, s->get_hdrs);
	SET(s->get, CURLOPT_HEADERFUNCTION, te_reg__header_cb);
	SET(s->get, CURLOPT_HEADERDATA, &s->get_resp);
	SET(s->get, CURLOPT_WRITEFUNCTION, get_write);
	SET(s->get, CURLOPT_WRITEDATA, s);
	SET(s->get, CURLOPT_PRIVATE, s);
	SET(s->put, CURLOPT_URL, s->put_url);
	SET(s->put, CURLOPT_UPLOAD, 1L);
	SET(s->put, CURLOPT_INFILESIZE_LARGE, (curl_off_t)b->size);
	SET(s->put, CURLOPT_READFUNCTION, put_read);
	SET(s->put, CURLOPT_READDATA, s);
	SET(s->put, CURLOPT_HTTPHEADER, s->put_hdrs);
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
	if (curl_multi_add_handle(c->multi, s->get) != CURLM_OK ||
	    curl_multi_add_handle(c->multi, s->put) != CURLM_OK) {
		rc =
		    te_error_set(err, TE_ERROR, "curl_multi_add_handle failed");
		goto done;
	}
done:
	te_buf_dispose(&url);
	if (rc < 0)
		te_error_wrap(err, "%s", b->digest);
	return rc;
}

#undef SET

/* A transfer of s finished: record success or the error. */
static void stream_done(struct copy *c, struct stream *s, CURL *h, CURLcode res)
{
	char what[800];
	bool is_get = h == s->get;
	struct te_reg_resp *resp = is_get ? &s->get_resp : &s->put_resp;
	te_buf *body = is_get ? &s->get_err : &s->put_err;
	te_registry *reg = is_get ? c->src : c->dst;

	snprintf(what, sizeof(what), "%s blob %s/%s@%s", is_get ? "GET" : "PUT",
	         te_registry_host(reg), is_get ? c->src_repo : c->dst_repo,
	         s->blob->digest);
	if (s->failed) {
		te_error_wrap(&s->err, "%s", what);
		return;
	}
	if (res != CURLE_OK &&
	    !(resp->status && resp->status != 200 && resp->status != 201)) {
		s->failed = true;
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
			s->failed = true;
			te_reg__http_error(&s->err, resp->status, body->ptr,
			                   body->len, what);
		} else if (!s->verified) {
			s->failed = true;
			te_error_set(&s->err, TE_EINVALID,
			             "%s: got %llu bytes, expected %lld", what,
			             (unsigned long long)s->in,
			             (long long)s->blob->size);
		} else {
			s->get_done = true;
		}
		return;
	}
	if (resp->status != 201) {
		s->failed = true;
		te_reg__http_error(&s->err, resp->status, body->ptr, body->len,
		                   what);
	} else if (resp->docker_digest[0] &&
	           strcmp(resp->docker_digest, s->blob->digest) != 0) {
		s->failed = true;
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
	    (sendable(s) > 0 || s->failed ||
	     (s->verified && s->out == (uint64_t)s->blob->size))) {
		s->put_paused = false;
		curl_easy_pause(s->put, CURLPAUSE_CONT);
		kicked = true;
	}
	return kicked;
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
	rc = te_registry_blob_exists(&exists, c->dst, c->dst_repo, b->digest,
	                             err);
	if (rc < 0 || exists)
		return rc;
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
	*need_stream = true;
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
			rc = stream_start(&c, &slots[i], &blobs[next], err);
			if (rc < 0) {
				stream_free(&c, &slots[i]);
				goto done;
			}
			next++;
			active++;
			kicked = true;
		}
		if (active == 0)
			break;
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

			if (!s->blob)
				continue;
			if (s->failed) {
				rc = te_error_set(err, s->err.code, "%s",
				                  s->err.msg);
				goto done;
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
			curl_multi_poll(c.multi, NULL, 0, 1000, NULL);
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

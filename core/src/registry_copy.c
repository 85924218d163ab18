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
 * error code) releases its handles and, after the te_reg__retry_decide
 * delay, resumes the same session: GET on its newest Location says how
 * many bytes N the registry holds (OCI distribution spec, "Get upload
 * status"), the source is asked for the rest (Range: bytes=K-, 206, or
 * 200 of which K bytes are dropped), and PATCHes carry bytes N.. with
 * Content-Range N-... followed by the final PUT ?digest=, also when the
 * failed request was a monolithic PUT (a PUT cannot start at an offset).
 * A new session is opened only when the registry says the old one is
 * gone (the status GET answers 404 or another non-retryable status, no
 * usable Range) or refused an offset (416).  The other slots keep
 * streaming meanwhile.
 * https://github.com/opencontainers/distribution-spec/blob/main/spec.md
 *
 * Hashing (the sha256 must cover [0, size) although a resumed try starts
 * in the middle): md always holds the hash of the bytes already handed to
 * the upload, [0, out); the ring holds [out, in), so the whole blob is
 * verified by finishing a copy of md over the ring.  The registry may
 * hold fewer bytes than out (a request died with bytes in flight) or, for
 * a monolithic PUT, any prefix: md cannot be rewound, so copies of it are
 * kept as checkpoints -- at every chunk the registry acknowledged (202)
 * and every CKPT_STEP bytes sent (the last CKPTS of them).  A resume at N
 * starts from the largest checkpoint K <= N (fresh at 0 when none): the
 * source sends from K, bytes [K, N) are hashed but not sent, [N, size)
 * are hashed as they go out.  So no byte the registry holds is sent
 * twice, and at most CKPT_STEP bytes (a chunk boundary: none) are
 * fetched from the source again for the hash.
 *
 * Invariants of one stream:
 *  1. Bytes go source -> ring -> destination; the ring has a fixed size,
 *     so memory is bounded by parallel * TE_REG_STREAM_BUF (plus
 *     CKPTS + 1 hash states per slot).
 *  2. A full ring pauses the GET (CURL_WRITEFUNC_PAUSE), an empty one
 *     pauses the PUT (CURL_READFUNC_PAUSE); the loop un-pauses them with
 *     curl_easy_pause once the other side has moved.
 *  3. Every blob byte is hashed; the last byte of the blob is held
 *     back from the PUT until the sha256 and size have been verified, so
 *     the registry can never commit unverified content.
 *     Chunked: nothing is committed before the final PUT, which starts
 *     only after the last PATCH, i.e. after verification (or, when the
 *     registry already holds every byte, once the source confirmed them).
 *  4. A failure that is not retried stops everything; every upload
 *     session still open is cancelled with DELETE.
 *  5. Tries per blob, resumes included, are bounded by the retry policy.
 */
#include "registry_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#define CKPTS 8
#define CKPT_STEP (1024u * 1024)

/* The sha256 state after the first off bytes of the blob. */
struct ckpt {
	uint64_t off;
	EVP_MD_CTX *md; /* NULL: unused */
};

struct stream {
	const te_blob_desc *blob; /* NULL: a free slot */
	bool live;                /* a try is running */
	int attempt;
	int64_t first_ms; /* when the first try began */
	int64_t retry_at; /* monotonic ms of the next try, when !live */
	bool reauthed;    /* one 401 refresh per blob */
	bool to_chunks;   /* one retry in chunks after a refused PUT */
	/* the blob: kept across tries */
	char *session;     /* newest upload Location, cancelled on failure */
	int64_t chunk_min; /* the session's OCI-Chunk-Min-Length */
	uint64_t sent_max; /* most bytes ever handed to the session */
	struct ckpt acked; /* what the last 202 acknowledged */
	struct ckpt ck[CKPTS];
	unsigned int ck_next;
	/* one try */
	uint64_t get_from;  /* first source byte asked for */
	uint64_t send_from; /* the registry holds [0, send_from) */
	uint64_t discard;  /* bytes of a 200 answer to drop (before get_from) */
	bool range_seen;   /* the GET's status and Content-Range checked */
	bool put_deferred; /* the final PUT waits for verification */
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

/* A copy of from->md as checkpoint ck (best effort: a checkpoint that
 * cannot be made is simply not there). */
static void ckpt_save(struct ckpt *ck, uint64_t off, const EVP_MD_CTX *md)
{
	if (!ck->md)
		ck->md = EVP_MD_CTX_new();
	if (ck->md && EVP_MD_CTX_copy_ex(ck->md, md)) {
		ck->off = off;
		return;
	}
	EVP_MD_CTX_free(ck->md);
	ck->md = NULL;
}

static void ckpt_free(struct ckpt *ck)
{
	EVP_MD_CTX_free(ck->md);
	ck->md = NULL;
	ck->off = 0;
}

/* Hash bytes at offset out that leave for the upload (or that the
 * registry already holds), with a checkpoint at every CKPT_STEP. */
static void hash_out(struct stream *s, const unsigned char *p, size_t len)
{
	while (len) {
		uint64_t to_step = CKPT_STEP - s->out % CKPT_STEP;
		size_t n = to_step < len ? (size_t)to_step : len;
		unsigned int i;
		bool have = false;

		EVP_DigestUpdate(s->md, p, n);
		s->out += n;
		p += n;
		len -= n;
		if (s->out % CKPT_STEP)
			continue;
		for (i = 0; i < CKPTS; i++)
			have = have || (s->ck[i].md && s->ck[i].off == s->out);
		if (!have)
			ckpt_save(&s->ck[s->ck_next++ % CKPTS], s->out, s->md);
	}
	if (s->out > s->sent_max)
		s->sent_max = s->out;
}

/* All bytes are in: check the sha256 of [0, out) + the ring's [out, in)
 * (invariant 3). */
static bool verify(struct stream *s)
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	char dg[TE_DIGEST_STR_MAX];
	EVP_MD_CTX *all = EVP_MD_CTX_new();
	size_t first = TE_REG_STREAM_BUF - s->head;

	if (!all || !EVP_MD_CTX_copy_ex(all, s->md)) {
		EVP_MD_CTX_free(all);
		stream_fail(s, TE_ENOMEM, "out of memory");
		return false;
	}
	if (first > s->fill)
		first = s->fill;
	EVP_DigestUpdate(all, s->ring + s->head, first);
	EVP_DigestUpdate(all, s->ring, s->fill - first);
	EVP_DigestFinal_ex(all, md, &mdlen);
	EVP_MD_CTX_free(all);
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

/* The first body bytes of the GET: a 206 must start at get_from; a 200
 * to a ranged GET sends the whole blob, of which get_from bytes go. */
static bool range_check(struct stream *s)
{
	int64_t first = -1;

	s->range_seen = true;
	if (s->get_resp.status == 200) {
		s->discard = s->get_from;
		return true;
	}
	if (te_reg__content_range_first(&first, s->get_resp.content_range) <
	        0 ||
	    (uint64_t)first != s->get_from) {
		char msg[200];

		snprintf(msg, sizeof(msg),
		         "source answered Range: bytes=%llu- with "
		         "Content-Range '%.80s'",
		         (unsigned long long)s->get_from,
		         s->get_resp.content_range);
		stream_fail(s, TE_EINVALID, msg);
		return false;
	}
	return true;
}

static size_t get_write(char *data, size_t size, size_t n, void *payload)
{
	struct stream *s = payload;
	size_t len = size * n, drop, hold, keep, tail, first;
	uint64_t want = (uint64_t)s->blob->size;
	const unsigned char *p = (const unsigned char *)data;
	te_error e = TE_ERROR_INIT;

	if (s->failed)
		return 0;
	if (s->get_resp.status != 200 && s->get_resp.status != 206) {
		(void)te_buf_put(&s->get_err, data, len, &e);
		return len;
	}
	if (!s->range_seen && !range_check(s))
		return 0;
	if (len > TE_REG_STREAM_BUF) {
		stream_fail(s, TE_ERROR, "source chunk larger than buffer");
		return 0;
	}
	/* drop: before get_from (a 200); hold: the registry has them,
	 * hashed only; keep: into the ring */
	drop = s->discard < len ? (size_t)s->discard : len;
	hold = 0;
	if (s->in < s->send_from)
		hold = s->send_from - s->in < len - drop
		           ? (size_t)(s->send_from - s->in)
		           : len - drop;
	keep = len - drop - hold;
	if (keep > TE_REG_STREAM_BUF - s->fill) {
		s->get_paused = true;
		return CURL_WRITEFUNC_PAUSE;
	}
	if (s->in + hold + keep > want) {
		stream_fail(s, TE_EINVALID,
		            "source sent more bytes than the "
		            "blob size");
		return 0;
	}
	s->discard -= drop;
	p += drop;
	hash_out(s, p, hold); /* the ring is empty: out == in */
	s->in += hold;
	p += hold;
	tail = (s->head + s->fill) % TE_REG_STREAM_BUF;
	first = TE_REG_STREAM_BUF - tail;
	if (first > keep)
		first = keep;
	memcpy(s->ring + tail, p, first);
	memcpy(s->ring, p + first, keep - first);
	s->fill += keep;
	s->in += keep;
	if (s->in == want && !s->verified && !verify(s))
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
	hash_out(s, (const unsigned char *)dst, want);
	s->head = (s->head + want) % TE_REG_STREAM_BUF;
	s->fill -= want;
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

/* End a try: handles and buffers go; the slot keeps its blob, session,
 * checkpoints and retry state. */
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
	curl_slist_free_all(s->get_hdrs);
	curl_slist_free_all(s->put_hdrs);
	te_buf_dispose(&s->get_err);
	te_buf_dispose(&s->put_err);
	EVP_MD_CTX_free(s->md);
	free(s->ring);
	free(s->put_url);
	free(s->get_url);
	s->put_url = s->get_url = NULL;
	s->get = s->put = NULL;
	s->get_hdrs = s->put_hdrs = NULL;
	s->md = NULL;
	s->ring = NULL;
	s->head = s->fill = 0;
	s->in = s->out = 0;
	s->get_from = s->send_from = s->discard = 0;
	s->range_seen = s->put_deferred = false;
	s->chunked = s->finishing = false;
	s->chunk = 0;
	s->chunk_left = 0;
	s->get_paused = s->put_paused = false;
	s->get_done = s->put_done = s->verified = s->failed = false;
	s->fail_get = false;
	s->fail_status = 0;
	s->fail_curl = 0;
	s->live = false;
}

/* Forget the session (cancelled unless committed).  The checkpoints
 * stay: they describe the blob, not the session. */
static void session_drop(struct copy *c, struct stream *s)
{
	if (!s->put_done)
		te_reg__upload_cancel(c->dst, s->session, c->dst_repo);
	free(s->session);
	s->session = NULL;
	s->chunk_min = 0;
	s->sent_max = 0;
}

static void stream_free(struct copy *c, struct stream *s)
{
	unsigned int i;

	session_drop(c, s);
	stream_release(c, s);
	ckpt_free(&s->acked);
	for (i = 0; i < CKPTS; i++)
		ckpt_free(&s->ck[i]);
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
	uint64_t pos = s->out > s->send_from ? s->out : s->send_from;
	uint64_t left = (uint64_t)s->blob->size - pos;
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
		         (unsigned long long)pos,
		         (unsigned long long)(pos + s->chunk_left - 1));
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

/*
 * The session this try writes to: the open one while the registry still
 * knows it (s->send_from = the bytes it holds; the rest goes as PATCHes,
 * whose Content-Range lets the registry refuse a wrong offset), else a
 * new one.  A registry claiming more bytes than it was ever sent is not
 * believed.  s->put_done when the blob turned out to be committed.
 */
static int session_open(struct copy *c, struct stream *s, te_error *err)
{
	const te_blob_desc *b = s->blob;
	int64_t off = -1;
	bool created = false;
	int rc;

	if (s->session) {
		rc = te_reg__upload_status(&off, &s->session, c->dst,
		                           c->dst_repo, c->dst_scope, err);
		if (rc < 0)
			return rc;
		if (off > (int64_t)s->sent_max || off > b->size)
			off = -1;
		if (off >= 0) {
			s->send_from = (uint64_t)off;
			s->chunked = true;
			return 0;
		}
		session_drop(c, s);
		/* a request that failed after the commit (the answer was
		 * lost) ended its session too: nothing is left to send */
		rc = te_registry_blob_exists(&s->put_done, c->dst, c->dst_repo,
		                             b->digest, err);
		if (rc < 0 || s->put_done)
			return rc;
		te_log_emit(te_reg__log(c->dst), TE_LOG_DEBUG,
		            "%s: upload session of %s is gone, opening a new "
		            "one",
		            te_registry_host(c->dst), b->digest);
	}
	rc = te_reg__upload_start(&s->session, &created, &s->chunk_min, c->dst,
	                          c->dst_repo, NULL, c->dst_scope, err);
	if (rc == 0 && created)
		rc = te_error_set(err, TE_ERROR,
		                  "POST blob upload: unexpected 201");
	s->chunked = b->size > 0 && (c->dst->chunked || s->chunk_min > 0);
	return rc;
}

/* md and the source offset for this try: the largest checkpoint at or
 * below send_from, else a fresh hash from byte 0. */
static int hash_resume(struct stream *s, te_error *err)
{
	const struct ckpt *best = NULL;
	unsigned int i;

	if (s->acked.md && s->acked.off <= s->send_from)
		best = &s->acked;
	for (i = 0; i < CKPTS; i++)
		if (s->ck[i].md && s->ck[i].off <= s->send_from &&
		    (!best || s->ck[i].off > best->off))
			best = &s->ck[i];
	if (best ? !EVP_MD_CTX_copy_ex(s->md, best->md)
	         : !EVP_DigestInit_ex(s->md, EVP_sha256(), NULL))
		return te_error_set(err, TE_ENOMEM, "out of memory");
	s->get_from = best ? best->off : 0;
	s->in = s->out = s->get_from;
	return 0;
}

/* Source GET from get_from; not started when a checkpoint covers the
 * whole blob (the registry holds it all: only the final PUT is left). */
static int get_start(struct copy *c, struct stream *s, te_error *err)
{
	char range[64];
	struct curl_slist *l;
	CURLcode cc = CURLE_OK;
	int rc;

	if (s->get_from == (uint64_t)s->blob->size) {
		if (!verify(s))
			te_error_wrap(&s->err, "%s", s->blob->digest);
		s->get_done = true;
		return 0;
	}
	rc = te_reg__easy_setup(s->get, c->src, err);
	if (rc == 0)
		rc = te_reg__auth_apply(s->get, &s->get_hdrs, c->src,
		                        s->get_url, c->src_scope, err);
	if (rc < 0)
		return rc;
	if (s->get_from > 0) {
		snprintf(range, sizeof(range), "Range: bytes=%llu-",
		         (unsigned long long)s->get_from);
		l = curl_slist_append(s->get_hdrs, range);
		if (!l)
			return te_error_set(err, TE_ENOMEM, "out of memory");
		s->get_hdrs = l;
	}
	SET(s->get, CURLOPT_URL, s->get_url);
	SET(s->get, CURLOPT_FOLLOWLOCATION, 1L);
	SET(s->get, CURLOPT_HTTPHEADER, s->get_hdrs);
	SET(s->get, CURLOPT_HEADERFUNCTION, te_reg__header_cb);
	SET(s->get, CURLOPT_HEADERDATA, &s->get_resp);
	SET(s->get, CURLOPT_WRITEFUNCTION, get_write);
	SET(s->get, CURLOPT_WRITEDATA, s);
	SET(s->get, CURLOPT_PRIVATE, s);
	if (cc != CURLE_OK)
		return te_error_set(err, TE_ERROR, "curl setup: %s",
		                    curl_easy_strerror(cc));
	if (curl_multi_add_handle(c->multi, s->get) != CURLM_OK)
		return te_error_set(err, TE_ERROR,
		                    "curl_multi_add_handle failed");
	return 0;
}

static int stream_start(struct copy *c, struct stream *s, te_error *err)
{
	te_buf url = TE_BUF_INIT(4096);
	const te_blob_desc *b = s->blob;
	CURLcode cc = CURLE_OK;
	int rc;

	s->live = true;
	s->attempt++;
	te_buf_init(&s->get_err, TE_REG_ERRBODY_MAX);
	te_buf_init(&s->put_err, TE_REG_ERRBODY_MAX);
	memset(&s->get_resp, 0, sizeof(s->get_resp));
	memset(&s->put_resp, 0, sizeof(s->put_resp));
	s->md = EVP_MD_CTX_new();
	s->ring = malloc(TE_REG_STREAM_BUF);
	s->get = curl_easy_init();
	s->put = curl_easy_init();
	if (!s->md || !s->ring || !s->get || !s->put) {
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
		goto done;
	}
	rc = session_open(c, s, err);
	if (rc < 0 || s->put_done) {
		s->get_done = s->put_done;
		goto done;
	}
	rc = hash_resume(s, err);
	if (rc == 0)
		rc = te_reg__ready(c->src, err);
	if (rc == 0)
		rc =
		    te_buf_printf(&url, err, "%s/v2/%s/blobs/%s",
		                  te_reg__base(c->src), c->src_repo, b->digest);
	if (rc < 0)
		goto done;
	s->chunk = s->chunk_min > 0 ? s->chunk_min : TE_REG_CHUNK_DEFAULT;
	if (s->chunk > TE_REG_CHUNK_MAX) {
		rc = te_error_set(err, TE_EUNSUPPORTED,
		                  "registry wants chunks of %lld bytes",
		                  (long long)s->chunk_min);
		goto done;
	}
	if (s->send_from > 0 || s->get_from > 0)
		te_log_emit(te_reg__log(c->dst), TE_LOG_DEBUG,
		            "%s: resuming %s at byte %llu of %lld (the "
		            "registry's offset), source from byte %llu",
		            te_registry_host(c->dst), b->digest,
		            (unsigned long long)s->send_from,
		            (long long)b->size,
		            (unsigned long long)s->get_from);
	s->get_url = te_buf_detach(&url);
	rc = get_start(c, s, err);
	if (rc == 0)
		rc = te_reg__easy_setup(s->put, c->dst, err);
	if (rc < 0)
		goto done;
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
	/* the final PUT waits until the source confirmed every byte */
	if (s->chunked && s->send_from == (uint64_t)b->size)
		s->put_deferred = true;
	else
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
	if (res != CURLE_OK &&
	    !(resp->status && resp->status != 200 && resp->status != 201 &&
	      resp->status != 202 && resp->status != 206)) {
		record_failure(s, is_get, 0, res);
		te_error_set(&s->err, TE_ENET, "%s: %s", what,
		             curl_easy_strerror(res));
		return;
	}
	if (is_get) {
		bool ok = resp->status == 200 || resp->status == 206;

		if (ok && !s->verified && s->in == (uint64_t)s->blob->size &&
		    !verify(s)) {
			te_error_wrap(&s->err, "%s", what);
			return;
		}
		if (!ok) {
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

		/* the registry holds [0, out): a resume point that needs no
		 * byte from the source again */
		ckpt_save(&s->acked, s->out, s->md);
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
 * A try of s failed: decide between another try (*retry; it resumes the
 * session, see session_open) and giving up.  A 401 gets one
 * re-authentication, a refused monolithic PUT one switch to chunks;
 * 416 (the registry holds another offset than the PATCH claimed) drops
 * the session; it and 404 BLOB_UPLOAD_UNKNOWN (the status GET of the next
 * try confirms the session is gone) are retried like transient failures;
 * everything else follows te_reg__retry_decide.
 */
static void stream_retry(bool *retry, struct copy *c, struct stream *s)
{
	struct te_reg_resp *resp = s->fail_get ? &s->get_resp : &s->put_resp;
	te_buf *body = s->fail_get ? &s->get_err : &s->put_err;
	te_registry *reg = s->fail_get ? c->src : c->dst;
	struct te_reg_retry_in in;
	char code[64];
	bool lost;
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
	/* Several blobs go up at once: those whose monolithic PUT was
	 * already on its way when another one made the switch retry in
	 * chunks too. */
	if (!s->fail_get && !s->chunked && !s->to_chunks &&
	    wants_chunks(s->fail_status)) {
		s->to_chunks = true;
		if (!c->dst->chunked)
			te_log_emit(te_reg__log(c->dst), TE_LOG_DEBUG,
			            "%s: monolithic upload refused (%ld), "
			            "switching to chunked uploads",
			            te_registry_host(c->dst), s->fail_status);
		c->dst->chunked = true;
		*retry = true;
		s->retry_at = te_reg__now_ms();
		return;
	}
	te_reg__error_code(code, body->ptr, body->len);
	lost = !s->fail_get && (s->fail_status == 416 ||
	                        (s->fail_status == 404 &&
	                         strcmp(code, "BLOB_UPLOAD_UNKNOWN") == 0));
	if (!s->fail_get && s->fail_status == 416)
		session_drop(c, s);
	memset(&in, 0, sizeof(in));
	in.attempt = s->attempt;
	in.status = lost ? 503 : s->fail_status;
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
			if (s->put_deferred && s->verified) {
				te_error e = TE_ERROR_INIT;

				s->put_deferred = false;
				if (put_next(&c, s, &e) < 0) {
					record_failure(s, false, 0, CURLE_OK);
					te_error_set(&s->err, e.code,
					             "PUT blob %s: %s",
					             s->blob->digest, e.msg);
				}
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

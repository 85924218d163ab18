/*
 * sprig_crypto.c - Sprig v3.2.3's deterministic crypto functions
 * (crypto.go; https://masterminds.github.io/sprig/crypto.html) over
 * OpenSSL: derivePassword (the Master Password algorithm,
 * https://masterpassword.app/masterpassword-algorithm.pdf: scrypt of the
 * master password salted with the user name, HMAC-SHA256 of the site, a
 * template of character classes picked by the seed) and decryptAES
 * (AES-256-CBC, the key the password's bytes padded with zeros, the IV
 * the first block, PKCS#7 padding dropped without checks, as Sprig does).
 */
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "render/sprig_int.h"

/* One scrypt (N=32768, r=8, p=2: 32 MiB, ~0.1 s) costs this many steps,
 * so the default budget allows about ten per render. */
#define SCRYPT_STEPS 1000000

static const char mp_seed[] = "com.lyndir.masterpassword";

/* The algorithm's templates per password type ... */
static const struct {
	const char *type;
	const char *const *templates;
	size_t n;
} mp_types[] = {
    {"maximum",
     (const char *const[]){"anoxxxxxxxxxxxxxxxxx", "axxxxxxxxxxxxxxxxxno"}, 2},
    {"long",
     (const char *const[]){
         "CvcvnoCvcvCvcv", "CvcvCvcvnoCvcv", "CvcvCvcvCvcvno", "CvccnoCvcvCvcv",
         "CvccCvcvnoCvcv", "CvccCvcvCvcvno", "CvcvnoCvccCvcv", "CvcvCvccnoCvcv",
         "CvcvCvccCvcvno", "CvcvnoCvcvCvcc", "CvcvCvcvnoCvcc", "CvcvCvcvCvccno",
         "CvccnoCvccCvcv", "CvccCvccnoCvcv", "CvccCvccCvcvno", "CvcvnoCvccCvcc",
         "CvcvCvccnoCvcc", "CvcvCvccCvccno", "CvccnoCvcvCvcc", "CvccCvcvnoCvcc",
         "CvccCvcvCvccno"},
     21},
    {"medium", (const char *const[]){"CvcnoCvc", "CvcCvcno"}, 2},
    {"short", (const char *const[]){"Cvcn"}, 1},
    {"basic", (const char *const[]){"aaanaaan", "aannaaan", "aaannaaa"}, 3},
    {"pin", (const char *const[]){"nnnn"}, 1},
};

/* ... and the characters of each class. */
static const char *mp_class(char c)
{
	switch (c) {
	case 'V':
		return "AEIOU";
	case 'C':
		return "BCDFGHJKLMNPQRSTVWXYZ";
	case 'v':
		return "aeiou";
	case 'c':
		return "bcdfghjklmnpqrstvwxyz";
	case 'A':
		return "AEIOUBCDFGHJKLMNPQRSTVWXYZ";
	case 'a':
		return "AEIOUaeiouBCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz";
	case 'n':
		return "0123456789";
	case 'o':
		return "@&%?,=[]_:-+*$#!'^~;()/.";
	default: /* 'x' */
		return "AEIOUaeiouBCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz"
		       "0123456789!@#$%^&*()";
	}
}

static void put_be32(te_buf *b, uint32_t v, te_error *err)
{
	unsigned char x[4] = {(unsigned char)(v >> 24),
	                      (unsigned char)(v >> 16), (unsigned char)(v >> 8),
	                      (unsigned char)v};

	te_buf_put(b, x, 4, err);
}

/* derivePassword COUNTER TYPE PASSWORD USER SITE */
static int f_derive_password(te_render_value **out, te_render_call *call,
                             sp_args a, size_t n, void *p, te_error *err)
{
	te_buf salt = TE_BUF_INIT(sp_out_max(call)),
	       res = TE_BUF_INIT(sp_out_max(call));
	unsigned char key[64], seed[EVP_MAX_MD_SIZE];
	unsigned int seed_len = 0;
	const char *tmpl = NULL, *cls;
	size_t i, t;

	(void)n;
	(void)p;
	if (WANT_INT(a[0]) < 0 || WANT_STR(a[1]) < 0 || WANT_STR(a[2]) < 0 ||
	    WANT_STR(a[3]) < 0 || WANT_STR(a[4]) < 0)
		return err->code;
	for (t = 0; t < sizeof(mp_types) / sizeof(mp_types[0]); t++)
		if (strcmp(mp_types[t].type, a[1]->u.s.ptr) == 0 &&
		    strlen(mp_types[t].type) == a[1]->u.s.len)
			break;
	if (t == sizeof(mp_types) / sizeof(mp_types[0])) {
		te_buf_printf(&res, err, "cannot find password template %s",
		              a[1]->u.s.ptr);
		return sp_ret_buf(out, &res, err);
	}
	if (sp_steps(call, SCRYPT_STEPS, err) < 0)
		return err->code;
	te_buf_puts(&salt, mp_seed, err);
	put_be32(&salt, (uint32_t)a[3]->u.s.len, err);
	te_buf_put(&salt, a[3]->u.s.ptr, a[3]->u.s.len, err);
	if (err->code)
		goto done;
	if (EVP_PBE_scrypt(a[2]->u.s.ptr, a[2]->u.s.len,
	                   (const unsigned char *)salt.ptr, salt.len, 32768, 8,
	                   2, (uint64_t)64 << 20, key, sizeof(key)) != 1) {
		te_error_set(err, TE_ERROR, "scrypt failed");
		goto done;
	}
	te_buf_clear(&salt);
	te_buf_puts(&salt, mp_seed, err);
	put_be32(&salt, (uint32_t)a[4]->u.s.len, err);
	te_buf_put(&salt, a[4]->u.s.ptr, a[4]->u.s.len, err);
	put_be32(&salt, (uint32_t)a[0]->u.i, err);
	if (err->code)
		goto done;
	if (!HMAC(EVP_sha256(), key, sizeof(key),
	          (const unsigned char *)salt.ptr, salt.len, seed, &seed_len)) {
		te_error_set(err, TE_ERROR, "HMAC-SHA256 failed");
		goto done;
	}
	tmpl = mp_types[t].templates[seed[0] % mp_types[t].n];
	for (i = 0; tmpl[i] && !err->code; i++) {
		cls = mp_class(tmpl[i]);
		te_buf_put(&res, cls + seed[i + 1] % strlen(cls), 1, err);
	}
done:
	OPENSSL_cleanse(key, sizeof(key));
	te_buf_dispose(&salt);
	if (err->code) {
		te_buf_dispose(&res);
		return err->code;
	}
	return sp_ret_buf(out, &res, err);
}

/* decryptAES PASSWORD BASE64: Go's panics where Sprig indexes out of
 * range (recovered by text/template as errors). */
static int f_decrypt_aes(te_render_value **out, te_render_call *call, sp_args a,
                         size_t n, void *p, te_error *err)
{
	te_buf c = TE_BUF_INIT(sp_out_max(call)),
	       plain = TE_BUF_INIT(sp_out_max(call));
	unsigned char key[32] = {0};
	EVP_CIPHER_CTX *ctx = NULL;
	size_t cap, body;
	int outl = 0, fin = 0, pad;
	long bad;

	(void)n;
	(void)p;
	if (WANT_STR(a[0]) < 0 || WANT_STR(a[1]) < 0 ||
	    sp_steps(call, a[1]->u.s.len / 64, err) < 0)
		return err->code;
	if (a[1]->u.s.len == 0)
		return sp_ret(out, te_render_value_string("", 0), err);
	memcpy(key, a[0]->u.s.ptr, a[0]->u.s.len < 32 ? a[0]->u.s.len : 32);
	bad = sp_b64_decode(&c, a[1]->u.s.ptr, a[1]->u.s.len, err);
	if (err->code)
		goto done;
	if (bad >= 0) {
		te_error_set(err, TE_EINVALID,
		             "illegal base64 data at input byte %ld", bad);
		goto done;
	}
	/* base64's DecodeString slice: capacity DecodedLen(len) */
	cap = a[1]->u.s.len / 4 * 3;
	if (c.len < 16) {
		te_error_set(err, TE_EINVALID,
		             "runtime error: slice bounds out of range [:16] "
		             "with capacity %zu",
		             cap);
		goto done;
	}
	body = c.len - 16;
	if (body % 16) {
		te_error_set(err, TE_EINVALID,
		             "crypto/cipher: input not full blocks");
		goto done;
	}
	if (body == 0) {
		te_error_set(err, TE_EINVALID,
		             "runtime error: index out of range [-1]");
		goto done;
	}
	if (te_buf_put(&plain, c.ptr, body, err) < 0) /* room for the output */
		goto done;
	ctx = EVP_CIPHER_CTX_new();
	if (!ctx ||
	    EVP_DecryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, key,
	                       (const unsigned char *)c.ptr) != 1 ||
	    EVP_CIPHER_CTX_set_padding(ctx, 0) != 1 ||
	    EVP_DecryptUpdate(ctx, (unsigned char *)plain.ptr, &outl,
	                      (const unsigned char *)c.ptr + 16,
	                      (int)body) != 1 ||
	    EVP_DecryptFinal_ex(ctx, (unsigned char *)plain.ptr + outl, &fin) !=
	        1) {
		te_error_set(err, TE_ERROR, "AES-256-CBC failed");
		goto done;
	}
	pad = (unsigned char)plain.ptr[body - 1];
	if ((size_t)pad > body) {
		te_error_set(err, TE_EINVALID,
		             "runtime error: slice bounds out of range [:%ld]",
		             (long)body - pad);
		goto done;
	}
	plain.len = body - (size_t)pad;
	plain.ptr[plain.len] = '\0';
done:
	EVP_CIPHER_CTX_free(ctx);
	OPENSSL_cleanse(key, sizeof(key));
	te_buf_dispose(&c);
	if (err->code) {
		te_buf_dispose(&plain);
		return err->code;
	}
	return sp_ret_buf(out, &plain, err);
}

const struct sp_entry te_render__sp_crypto[] = {
    {"decryptAES", f_decrypt_aes, 2, 2, NULL},
    {"derivePassword", f_derive_password, 5, 5, NULL},
};
const size_t te_render__sp_crypto_len =
    sizeof(te_render__sp_crypto) / sizeof(te_render__sp_crypto[0]);

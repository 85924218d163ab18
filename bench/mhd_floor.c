/*
 * mhd_floor.c - the floor under bench/webhook.sh: a bare libmicrohttpd
 * server that buffers the body, checks X-Hub-Signature-256 (HMAC-SHA256,
 * constant-time compare) and answers a prebuilt 401 or 200.  No routing,
 * no JSON, no queue: what tagexport-server could reach on this machine if
 * it did nothing else.  Built and run by bench/webhook.sh; not part of the
 * build.
 *
 * usage: mhd-floor <port> <secret file> <threads>   (stops on SIGTERM)
 * Listens on 127.0.0.1 only.
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BODY_MAX (64 * 1024)

static char secret[256];
static size_t secret_len;
static struct MHD_Response *unauthorized, *ok;

struct body {
	size_t len;
	char data[BODY_MAX];
};

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static int signature_ok(const char *header, const struct body *b)
{
	unsigned char mac[32], want[32];
	unsigned int len = sizeof(mac);
	int i;

	if (!header || strlen(header) != 71 || strncmp(header, "sha256=", 7))
		return 0;
	for (i = 0; i < 32; i++) {
		int hi = hex_digit(header[7 + 2 * i]);
		int lo = hex_digit(header[8 + 2 * i]);

		if (hi < 0 || lo < 0)
			return 0;
		want[i] = (unsigned char)(hi * 16 + lo);
	}
	if (!HMAC(EVP_sha256(), secret, (int)secret_len,
	          (const unsigned char *)b->data, b->len, mac, &len))
		return 0;
	return CRYPTO_memcmp(mac, want, sizeof(mac)) == 0;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c,
                              const char *url, const char *method,
                              const char *version, const char *upload,
                              size_t *upload_size, void **state)
{
	struct body *b = *state;
	const char *sig;

	(void)cls;
	(void)url;
	(void)method;
	(void)version;
	if (!b) {
		b = malloc(sizeof(*b));
		if (!b)
			return MHD_NO;
		b->len = 0;
		*state = b;
		return MHD_YES;
	}
	if (*upload_size) {
		size_t n = *upload_size;

		if (n > BODY_MAX - b->len)
			return MHD_NO;
		memcpy(b->data + b->len, upload, n);
		b->len += n;
		*upload_size = 0;
		return MHD_YES;
	}
	sig = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	                                  "X-Hub-Signature-256");
	if (signature_ok(sig, b))
		return MHD_queue_response(c, 200, ok);
	return MHD_queue_response(c, 401, unauthorized);
}

static void completed(void *cls, struct MHD_Connection *c, void **state,
                      enum MHD_RequestTerminationCode code)
{
	(void)cls;
	(void)c;
	(void)code;
	free(*state);
	*state = NULL;
}

static struct MHD_Response *fixed(const char *text)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
	    strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);

	if (r)
		MHD_add_response_header(r, "Content-Type", "application/json");
	return r;
}

int main(int argc, char **argv)
{
	struct sockaddr_in addr;
	struct MHD_Daemon *d;
	sigset_t set;
	FILE *f;
	int sig;

	if (argc != 4) {
		fprintf(stderr, "usage: %s PORT SECRET_FILE THREADS\n",
		        argv[0]);
		return 2;
	}
	f = fopen(argv[2], "r");
	if (!f || !fgets(secret, sizeof(secret), f)) {
		fprintf(stderr, "cannot read %s\n", argv[2]);
		return 1;
	}
	fclose(f);
	secret_len = strcspn(secret, "\r\n");
	unauthorized = fixed("{\"error\":\"bad signature\"}\n");
	ok = fixed("{\"ignored\":\"not a tag push\"}\n");
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_port = htons((unsigned short)atoi(argv[1]));
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	d = MHD_start_daemon(
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TURBO,
	    (unsigned short)atoi(argv[1]), NULL, NULL, handle, NULL,
	    MHD_OPTION_SOCK_ADDR, &addr, MHD_OPTION_THREAD_POOL_SIZE,
	    (unsigned int)atoi(argv[3]), MHD_OPTION_NOTIFY_COMPLETED, completed,
	    NULL, MHD_OPTION_END);
	if (!unauthorized || !ok || !d) {
		fprintf(stderr, "cannot start on port %s\n", argv[1]);
		return 1;
	}
	sigwait(&set, &sig);
	MHD_stop_daemon(d);
	MHD_destroy_response(unauthorized);
	MHD_destroy_response(ok);
	return 0;
}

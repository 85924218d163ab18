/*
 * forge.c - webhook deliveries: ts_forge_verify and ts_forge_parse for
 * GitHub, GitLab and Gitea/Forgejo, JSON and form-encoded bodies.
 * Input: the request as it arrives, "Name: value" header lines, an empty
 * line, the body; the first byte picks the forge ('h' GitHub, 'l'
 * GitLab, anything else Gitea).  The project secret is fixed.
 */
#include <strings.h>

#include "forge.h"
#include "fuzz.h"
#include "verify.h"

#define MAX_HEADERS 32

static const char secret[] = "test-secret-not-for-production";
static struct ts_hmac *hmac;

struct request {
	const char *name[MAX_HEADERS];
	const char *value[MAX_HEADERS];
	size_t n;
};

static const char *lookup(void *ctx, const char *name)
{
	struct request *r = ctx;
	size_t i;

	for (i = 0; i < r->n; i++)
		if (!strcasecmp(r->name[i], name))
			return r->value[i];
	return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	te_error err = TE_ERROR_INIT;

	(void)argc;
	(void)argv;
	if (ts_hmac_new(&hmac, secret, strlen(secret), &err) < 0)
		abort();
	return 0;
}

/* Split the header block of copy (NUL-terminated at size) in place;
 * returns where the body starts. */
static char *headers(struct request *r, char *p, char *end)
{
	char *eol, *colon;

	while (p < end) {
		eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			eol = end;
		*eol = '\0';
		if (p == eol)
			return eol < end ? eol + 1 : end;
		colon = strchr(p, ':');
		if (colon && r->n < MAX_HEADERS) {
			*colon = '\0';
			for (colon++; *colon == ' '; colon++)
				;
			r->name[r->n] = p;
			r->value[r->n++] = colon;
		}
		p = eol < end ? eol + 1 : end;
	}
	return end;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct request r = {.n = 0};
	struct ts_hook_request req = {lookup, &r, NULL, 0};
	struct ts_hook_event ev;
	te_error err = TE_ERROR_INIT;
	te_forge forge;
	char *copy, *body;

	if (size < 1)
		return 0;
	forge = data[0] == 'h'   ? TE_FORGE_GITHUB
	        : data[0] == 'l' ? TE_FORGE_GITLAB
	                         : TE_FORGE_GITEA;
	copy = malloc(size);
	if (!copy)
		return 0;
	memcpy(copy, data + 1, size - 1);
	copy[size - 1] = '\0';
	body = headers(&r, copy, copy + size - 1);
	req.body = body;
	req.body_len = (size_t)(copy + size - 1 - body);
	(void)ts_forge_verify(forge, secret, strlen(secret), hmac, &req);
	memset(&ev, 0, sizeof(ev));
	if (ts_forge_parse(&ev, forge, &req, &err) == 0 && ev.is_tag &&
	    !ts_tag_name_valid(ev.tag))
		abort(); /* a tag push names a valid tag */
	ts_hook_event_dispose(&ev);
	free(copy);
	return 0;
}

/*
 * werf_yaml.c - werf's fromYaml and toYaml (core/src/werfcfg_yaml.c): any
 * file of a pushed commit can reach fromYaml through .Files.Get.  Whatever
 * fromYaml accepts, toYaml must print, and that text must decode again to
 * a value that prints the same (yaml.v2's round trip).
 * Input: YAML text.
 */
#include "fuzz.h"
#include "werfcfg_int.h"

static char *print(const te_render_value *v, size_t *len)
{
	te_error err = TE_ERROR_INIT;
	char *text = NULL;

	/* NULL when a bound (nodes, depth, bytes) stops it. */
	if (te_werfcfg__to_yaml(&text, len, v, &err) < 0)
		return NULL;
	return text;
}

static char *realloc_newline(char *text, size_t *len)
{
	char *grown = realloc(text, *len + 2);

	if (!grown) {
		free(text);
		return NULL;
	}
	grown[(*len)++] = '\n';
	grown[*len] = '\0';
	return grown;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	te_render_value *v = NULL, *again = NULL;
	te_error err = TE_ERROR_INIT;
	char *first, *second = NULL;
	size_t len = 0, len2 = 0;

	if (te_werfcfg__from_yaml(&v, (const char *)data, size, &err) < 0)
		return 0;
	first = print(v, &len);
	/* toYaml drops yaml.Marshal's last newline, which a block scalar at
	 * the end needs: give it back before decoding. */
	if (first && (first = realloc_newline(first, &len)) &&
	    te_werfcfg__from_yaml(&again, first, len, &err) == 0) {
		second = print(again, &len2);
	}
	free(first);
	free(second);
	te_render_value_unref(v);
	te_render_value_unref(again);
	return 0;
}

/*
 * render.c - the Go text/template engine (core/src/render): te_render_parse,
 * te_render_exec, te_render_value_from_json, Sprig's functions
 * (te_render_funcs_add_sprig) and, through an `include` function as werf
 * registers one, te_render_call_template.
 * Input: template NUL JSON data (invalid or empty JSON: a fixed document).
 * Budgets are lowered so that a hostile template ends in milliseconds; the
 * engine's own defaults are exercised by tests/unit/test_render.c.
 */
#include "fuzz.h"
#include "tagexport/render.h"

static const char fixed_data[] =
    "{\"str\":\"hello\",\"i\":17,\"f\":1.5,\"t\":true,\"nil\":null,"
    "\"list\":[\"a\",1,null,[2]],\"map\":{\"a\":1,\"b\":{\"c\":\"d\"}}}";

/* {{ include "name" . }}: werf's function, through the public hook. */
static int include(te_render_value **out, te_render_call *call,
                   te_render_value *const *args, size_t nargs, void *payload,
                   te_error *err)
{
	const char *name;
	char *text = NULL;
	size_t len = 0;
	int rc;

	(void)payload;
	if (te_render_value_kind(args[0]) != TE_RENDER_STRING)
		return te_error_set(err, TE_EINVALID, "name is not a string");
	name = te_render_value_str(args[0], NULL);
	rc = te_render_call_template(&text, &len, call, name,
	                             nargs > 1 ? args[1] : NULL, err);
	if (rc < 0)
		return rc;
	*out = te_render_value_string(text, len);
	free(text);
	return *out ? 0 : te_error_set(err, TE_ENOMEM, "out of memory");
}

static te_render_value *data_of(const char *json, size_t len)
{
	te_render_value *data = NULL;
	te_error err = TE_ERROR_INIT;

	if (len && te_render_value_from_json(&data, json, len, &err) == 0)
		return data;
	err = (te_error)TE_ERROR_INIT;
	if (te_render_value_from_json(&data, fixed_data, sizeof(fixed_data) - 1,
	                              &err) < 0)
		abort(); /* the fixed document is valid JSON */
	return data;
}

int LLVMFuzzerTestOneInput(const uint8_t *bytes, size_t size)
{
	te_render_limits limits = TE_RENDER_LIMITS_INIT;
	te_render_funcs *funcs = NULL;
	te_render_set *set = NULL;
	te_render_value *data;
	te_error err = TE_ERROR_INIT;
	char *fields[2], *copy, *out = NULL;
	size_t json_len = 0, out_len = 0;

	copy = fuzz_split(bytes, size, fields, 2, &json_len);
	if (!copy)
		return 0;
	limits.steps_max = 100000;
	limits.output_max = (size_t)1 << 16;
	data = data_of(fields[1], json_len);
	if (te_render_funcs_new(&funcs, &err) < 0 ||
	    te_render_funcs_add_sprig(funcs, &err) < 0 ||
	    te_render_funcs_add(funcs, "include", include, 1, 2, NULL, &err) <
	        0 ||
	    te_render_set_new(&set, funcs, &limits, &err) < 0)
		abort();
	if (te_render_parse(set, "werf.yaml", fields[0], strlen(fields[0]),
	                    &err) == 0)
		(void)te_render_exec(&out, &out_len, set, "werf.yaml", data,
		                     &err);
	free(out);
	te_render_set_free(set);
	te_render_funcs_free(funcs);
	te_render_value_unref(data);
	free(copy);
	return 0;
}

/*
 * sprig_int.h - helpers shared by the Sprig function files (sprig.c,
 * sprig_lists.c): results, Go's argument checks and the budgets.
 */
#ifndef TE_SPRIG_INT_H
#define TE_SPRIG_INT_H

#include "render/render_int.h"

typedef te_render_value *const *sp_args;

struct sp_entry {
	const char *name;
	te_render_fn fn;
	size_t min_args, max_args;
	const void *payload;
};

/* lists and dicts (sprig_lists.c) */
extern const struct sp_entry te_render__sp_lists[];
extern const size_t te_render__sp_lists_len;
/* integer arithmetic, until, slice (sprig_math.c) */
extern const struct sp_entry te_render__sp_math[];
extern const size_t te_render__sp_math_len;
/* b64enc b32enc sha1sum sha256sum adler32sum (sprig_encoding.c) */
extern const struct sp_entry te_render__sp_encoding[];
extern const size_t te_render__sp_encoding_len;
/* split splitList splitn join toStrings substr (sprig_split.c) */
extern const struct sp_entry te_render__sp_split[];
extern const size_t te_render__sp_split_len;
/* toJson toPrettyJson toRawJson and must* (sprig_json.c) */
extern const struct sp_entry te_render__sp_json[];
extern const size_t te_render__sp_json_len;
/* regexMatch regexFind ... regexQuoteMeta and must* (sprig_regex.c) */
extern const struct sp_entry te_render__sp_regex[];
extern const size_t te_render__sp_regex_len;

/* set unset merge mergeOverwrite and must* (sprig_dicts.c) */
extern const struct sp_entry te_render__sp_dicts[];
extern const size_t te_render__sp_dicts_len;

/* float64 addf add1f subf mulf divf maxf minf floor ceil round
 * (sprig_float.c) */
extern const struct sp_entry te_render__sp_float[];
extern const size_t te_render__sp_float_len;

/* upper lower title untitle swapcase camelcase snakecase kebabcase
 * initials abbrev abbrevboth wrap wrapWith (sprig_case.c) */
extern const struct sp_entry te_render__sp_case[];
extern const size_t te_render__sp_case_len;

/* base dir clean ext isAbs os* b32dec chunk mustChunk hello
 * (sprig_paths.c) */
extern const struct sp_entry te_render__sp_paths[];
extern const size_t te_render__sp_paths_len;

/* fromJson mustFromJson (sprig_fromjson.c) */
extern const struct sp_entry te_render__sp_fromjson[];
extern const size_t te_render__sp_fromjson_len;

/* semverCompare semver (sprig_semver.c) */
extern const struct sp_entry te_render__sp_semver[];
extern const size_t te_render__sp_semver_len;

/* duration durationRound (sprig_duration.c) */
extern const struct sp_entry te_render__sp_duration[];
extern const size_t te_render__sp_duration_len;

/* urlParse urlJoin (sprig_url.c) */
extern const struct sp_entry te_render__sp_url[];
extern const size_t te_render__sp_url_len;

/* derivePassword decryptAES (sprig_crypto.c) */
extern const struct sp_entry te_render__sp_crypto[];
extern const size_t te_render__sp_crypto_len;

/* now date dateInZone htmlDate htmlDateInZone unixEpoch dateModify ago
 * (sprig_date.c) */
extern const struct sp_entry te_render__sp_date[];
extern const size_t te_render__sp_date_len;

#define SP_DEPTH_MAX 512

#define sp_empty te_render__sp_empty
#define sp_ret te_render__sp_ret
#define sp_ret_ref te_render__sp_ret_ref
#define sp_ret_bool te_render__sp_ret_bool
#define sp_ret_buf te_render__sp_ret_buf
#define sp_want te_render__sp_want
#define sp_strval te_render__sp_strval
#define sp_deep_equal te_render__sp_deep_equal
#define sp_out_max te_render__sp_out_max
#define sp_steps te_render__sp_steps
#define sp_nest_check te_render__sp_nest_check
#define sp_kind te_render__sp_kind
#define sp_type te_render__sp_type
#define sp_list_budget te_render__sp_list_budget
#define sp_b64_decode te_render__sp_b64_decode
#define sp_parse_duration te_render__sp_parse_duration
#define sp_duration_string te_render__sp_duration_string
#define sp_time_quote te_render__sp_time_quote

/* Sprig's empty(): Go's zero value of the value's type. */
bool sp_empty(const te_render_value *v);
/* *out = v (owned); TE_ENOMEM when v is NULL. */
int sp_ret(te_render_value **out, te_render_value *v, te_error *err);
/* *out = a new reference to v (nil when v is NULL). */
int sp_ret_ref(te_render_value **out, te_render_value *v, te_error *err);
int sp_ret_bool(te_render_value **out, bool b, te_error *err);
/* The buffer's bytes as the result string, or err's failure. */
int sp_ret_buf(te_render_value **out, te_buf *b, te_error *err);
/* Go's verdict on an argument for a parameter of type go_type. */
int sp_want(const te_render_value *v, te_render_kind kind, const char *go_type,
            te_error *err);
#define WANT_STR(v) sp_want((v), TE_RENDER_STRING, "string", err)
#define WANT_INT(v) sp_want((v), TE_RENDER_INT, "int", err)
/* fmt's %v, strings as they are (Sprig's strval). */
int sp_strval(te_buf *b, const te_render_value *v, te_error *err);
/* Go's reflect Kind name of v ("invalid" for nil). */
const char *sp_kind(const te_render_value *v);
/* Go's %T of v as werf's data gives it ("<nil>" for nil). */
const char *sp_type(const te_render_value *v);
/* base64.StdEncoding.DecodeString into b: -1, or the input offset of
 * Go's CorruptInputError (sprig_encoding.c). */
long sp_b64_decode(te_buf *b, const char *s, size_t n, te_error *err);
/* time.ParseDuration with Go's error texts (sprig_duration.c). */
int sp_parse_duration(const char *s, size_t n, int64_t *out, te_error *err);
/* time's quote: "s" with control and non-ASCII bytes as \xNN. */
void sp_time_quote(te_buf *b, const char *s, size_t n, te_error *err);
/* time.Duration.String (sprig_duration.c). */
int sp_duration_string(te_buf *b, int64_t d, te_error *err);
/* reflect.DeepEqual */
bool sp_deep_equal(const te_render_value *x, const te_render_value *y);
size_t sp_out_max(const te_render_call *call);
/* Spend n work steps of the running execution (te_render_limits). */
int sp_steps(te_render_call *call, uint64_t n, te_error *err);
/* A list of count new elements fits the budgets (a step and 8 bytes of
 * output_max each). */
int sp_list_budget(te_render_call *call, uint64_t count, te_error *err);
/* v may go one level deeper inside a new container. */
int sp_nest_check(te_render_call *call, const te_render_value *v,
                  te_error *err);

/* strconv.Atoi as Sprig uses it (and ParseInt(s, 10, 64)): the nearest
 * int64 when out of range (Sprig drops the error), 0 on a syntax error. */
int64_t te_render__sp_atoi(const char *s, size_t n);

#endif

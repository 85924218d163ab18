/*
 * render.h - Go text/template (Go 1.22 semantics) without Go.
 *
 * The engine behind werf.yaml rendering: `{{ }}` actions with `{{- -}}`
 * trimming, pipelines, variables, if/else if/with/else with/range (lists,
 * maps in key order, integers), break/continue, define/template/block and
 * the builtins and eq ge gt html index js le len lt ne not or print printf
 * println slice urlquery call.  Output and error texts follow Go's
 * text/template byte for byte where the value model allows
 * (https://pkg.go.dev/text/template).
 *
 * Where this differs from Go, on purpose (the value model has no Go types):
 *  - complex constants (1+2i) parse, but using one is an error naming it;
 *  - there are no function values, so `call` always fails as Go does for
 *    a non-function ("non-function of type T", "call of nil");
 *  - a list's capacity is its length (slice cannot reach past len);
 *  - functions from te_render_funcs_add get untyped values and check
 *    their own arguments; printf's format is checked as Go checks it;
 *  - identifiers and %q decide "letter" and "printable" exactly for
 *    ASCII and Latin-1, and by Unicode block above that (an unassigned
 *    rune may print where Go would escape it);
 *  - `index` of a string gives an int (Go: a uint8; only type names in
 *    messages differ);
 *  - nested {{template}} calls stop at call_depth (Go: 100000), with
 *    Go's message "exceeded maximum template depth (N)";
 *  - error messages are te_error's: one line, at most 511 bytes.
 *
 * Values: nil, bool, int64, float64, string, list, map (string keys,
 * iterated and printed in key order), as YAML or JSON data gives them.
 * Values are reference counted and not thread safe (one set per thread).
 * Lists and strings are immutable once handed to the engine; maps are
 * changed in place by Sprig's set, unset and merge* as Go changes maps,
 * and the caller's data sees those changes.
 *
 * Ownership: every te_render_value returned by a constructor or by
 * te_render_value_from_json is owned by the caller (one reference), freed
 * with te_render_value_unref.  Accessors return borrowed pointers that live
 * as long as the container.  te_render_set_free frees a set; the funcs
 * given to te_render_set_new are borrowed and must outlive the set.
 *
 * Budgets (te_render_limits, defaults in TE_RENDER_LIMITS_INIT), each error
 * names the limit it hit:
 *   input_max   bytes of one template text                 (1 MiB);
 *               a parse holds at most ~100 bytes of memory per
 *               input byte (measured: 95 MB for 1 MiB of "{{.}}")
 *   parse_depth nesting of blocks and parentheses            (200)
 *   call_depth  nested {{template}} calls (Go's "template depth") (200)
 *   exec_depth  nesting of the executor across calls        (5000)
 *   output_max  bytes of output, and of any string a builtin
 *               builds                                   (16 MiB)
 *   steps_max   work steps: every node executed, every range
 *               iteration, every function call, and one per 64
 *               bytes (8 elements) a call reads or builds (10,000,000)
 */
#ifndef TAGEXPORT_RENDER_H
#define TAGEXPORT_RENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tagexport/error.h"

typedef struct te_render_value te_render_value;
typedef struct te_render_funcs te_render_funcs;
typedef struct te_render_set te_render_set;
typedef struct te_render_call te_render_call;

typedef enum {
	TE_RENDER_NIL,
	TE_RENDER_BOOL,
	TE_RENDER_INT,
	TE_RENDER_FLOAT,
	TE_RENDER_STRING,
	TE_RENDER_LIST,
	TE_RENDER_MAP
} te_render_kind;

/* ---- values ------------------------------------------------------------ */

/* Constructors return NULL only when memory is exhausted. */
te_render_value *te_render_value_nil(void);
te_render_value *te_render_value_bool(bool b);
te_render_value *te_render_value_int(int64_t i);
te_render_value *te_render_value_float(double f);
/* Copies len bytes of s (any bytes, NUL included). */
te_render_value *te_render_value_string(const char *s, size_t len);
te_render_value *te_render_value_list(void);
te_render_value *te_render_value_map(void);

/* Take one more reference; returns v. */
te_render_value *te_render_value_ref(te_render_value *v);
/* Drop one reference; frees at zero.  Accepts NULL. */
void te_render_value_unref(te_render_value *v);

/* Append item to list, taking over the caller's reference to item (also
 * on failure).  A value must never be put inside itself. */
int te_render_list_push(te_render_value *list, te_render_value *item,
                        te_error *err);
/* Set key in map (replacing an old value), taking over the caller's
 * reference to val (also on failure). */
int te_render_map_set(te_render_value *map, const char *key, size_t key_len,
                      te_render_value *val, te_error *err);

/*
 * An object whose fields are methods, as Go calls methods of template data
 * (werf's `.Files.Get "path"`): `.Obj.Name ARGS` (also `$x.Obj.Name`, and
 * with a piped final argument) calls the function Name of methods with
 * ARGS, checked and reported as a function call (`error calling Name:
 * ...`).  The receiver is not passed: put it in the functions' payload.
 * Otherwise it is an empty map (kind TE_RENDER_MAP) that is true in
 * if/with/and/or like a Go struct (Go would print a
 * struct).  methods is borrowed and must outlive the value.
 */
te_render_value *te_render_value_object(const te_render_funcs *methods);

te_render_kind te_render_value_kind(const te_render_value *v);
bool te_render_value_bool_get(const te_render_value *v);
int64_t te_render_value_int_get(const te_render_value *v);
double te_render_value_float_get(const te_render_value *v);
/* Borrowed bytes, NUL-terminated; *len gets the length when not NULL. */
const char *te_render_value_str(const te_render_value *v, size_t *len);
/* Elements of a list, entries of a map (0 for other kinds). */
size_t te_render_value_len(const te_render_value *v);
/* Borrowed; NULL when out of range or v is no list. */
te_render_value *te_render_list_at(const te_render_value *v, size_t i);
/* Borrowed; NULL when absent.  Map entries are kept in key order. */
te_render_value *te_render_map_get(const te_render_value *v, const char *key,
                                   size_t key_len);
/* i-th entry in key order: borrowed key (and its length) and value. */
const char *te_render_map_key_at(const te_render_value *v, size_t i,
                                 size_t *key_len);
te_render_value *te_render_map_value_at(const te_render_value *v, size_t i);

/*
 * Build a value tree from JSON text: objects become maps, arrays lists,
 * integers (no fraction or exponent, in int64 range) ints, other numbers
 * floats.  Depth is limited to 512.  TE_EINVALID names the line and
 * column of a syntax error.
 */
int te_render_value_from_json(te_render_value **out, const char *json,
                              size_t len, te_error *err);

/* ---- functions --------------------------------------------------------- */

/*
 * A template function.  args are borrowed for the call (a missing value
 * arrives as nil, as Go passes an untyped nil).  call is the running
 * execution, borrowed for the call (see te_render_call_template).  On
 * success store a new reference in *out and return 0; on failure return a
 * negative te_code with a message in err: the engine reports it as Go
 * does, `error calling NAME: MESSAGE`.
 */
typedef int (*te_render_fn)(te_render_value **out, te_render_call *call,
                            te_render_value *const *args, size_t nargs,
                            void *payload, te_error *err);

/*
 * From inside a function: execute the template `name` of the running set
 * with dot (borrowed; NULL: no value) and return its output in *out (heap,
 * NUL-terminated, free() it), as Helm's and werf's `include` does.  It runs
 * within the caller's budgets: it counts as one nested {{template}} call,
 * and its steps, nesting and output (capped at output_max) are the running
 * execution's.  Errors come back in err, in Go's form for the inner
 * template (`template: NAME:LINE:COL: executing ...`); TE_ENOTFOUND for an
 * unknown name.
 */
int te_render_call_template(char **out, size_t *out_len, te_render_call *call,
                            const char *name, te_render_value *dot,
                            te_error *err);

#define TE_RENDER_VARIADIC ((size_t)-1)

int te_render_funcs_new(te_render_funcs **out, te_error *err);
/*
 * Register name (a Go identifier; replaces a builtin or an earlier entry of
 * the same name) taking min_args..max_args arguments (max_args may be
 * TE_RENDER_VARIADIC).  payload is passed to fn unchanged and is borrowed.
 * Names are checked when a template is parsed and looked up again when it
 * runs; do not change the table while a set that uses it executes.
 */
int te_render_funcs_add(te_render_funcs *funcs, const char *name,
                        te_render_fn fn, size_t min_args, size_t max_args,
                        void *payload, te_error *err);
void te_render_funcs_free(te_render_funcs *funcs);

/*
 * Register Sprig v3.2.3's functions (sprig.TxtFuncMap() but expandenv,
 * https://masterminds.github.io/sprig/) in funcs, replacing entries of the
 * same names (Sprig's slice replaces the builtin, as Funcs() does in Go).
 * Results equal Sprig's byte for byte; where the value model cannot say
 * what Go says:
 *  - integers are Go ints (werf decodes werf.yaml into interface{}, so its
 *    numbers are int), typeOf/kindOf say "int"; lists are
 *    "[]interface {}", maps "map[string]interface {}";
 *  - an argument of the wrong type is refused as Go refuses it, but the
 *    message comes inside "error calling NAME: " (Go reports it before
 *    the call);
 *  - Sprig's int64 results (add, until, ...) are ints here, and sortAlpha
 *    and keys give lists, not []string (typeOf tells them apart in Go);
 *  - a nil read out of data passed for a map parameter (get, hasKey,
 *    pick...) is a nil map here; Go refuses it as "interface {}";
 *  - keys and values list keys in key order (Go's order is random);
 *  - strings a function builds are held to output_max before they are
 *    built ("result exceeds the output limit of N bytes"), lists to
 *    output_max at 8 bytes per element; until/untilStep cost a step per
 *    element, uniq/without/has a step per 8 comparisons; lists and maps
 *    built by templates nest at most 512 deep, as JSON data does (also
 *    fromJson's, an error where Go allows 10000 levels);
 *  - set/merge refuse to put a dict inside itself (Go builds a cycle that
 *    no printer survives), and the levels such changes add to values
 *    that hold the dict are bounded per execution (512);
 *  - an integral float constant passes for an int parameter (round's
 *    places), as Go converts 1.0; semver's numbers above 2^63 print
 *    negative (Go: uint64); the case tables are Unicode's as of the Go
 *    that generated them (gen_unicode_case.go).
 * Implemented:
 *   defaults/logic: all any atoi coalesce deepEqual default empty fail
 *     kindIs kindOf ternary toString typeIs typeIsLike typeOf;
 *   strings: cat contains hasPrefix hasSuffix indent nindent nospace
 *     plural quote repeat replace squote trim trimAll trimall trimPrefix
 *     trimSuffix trunc;
 *   lists/dicts: append compact concat deepCopy dict dig first get has
 *     hasKey initial keys last list omit pick pluck prepend push rest
 *     reverse sortAlpha tuple uniq values without, and mustAppend
 *     mustCompact mustDeepCopy mustFirst mustHas mustInitial mustLast
 *     mustPrepend mustPush mustRest mustReverse mustUniq mustWithout;
 *   math: add add1 biggest div int int64 max min mod mul sub until
 *     untilStep seq toDecimal slice mustSlice (Sprig's slice replaces Go's
 *     builtin); floats: float64 addf add1f subf mulf divf maxf minf floor
 *     ceil round (shopspring/decimal's exact sums and products, 16
 *     decimals for quotients);
 *   split/join: join split splitList splitn substr toStrings;
 *   encoding: adler32sum b32enc b32dec b64dec b64enc sha1sum sha256sum;
 *   JSON: fromJson mustFromJson toJson toPrettyJson toRawJson mustToJson
 *     mustToPrettyJson mustToRawJson (Go 1.22's encoding/json: \b and \f
 *     escaped so; fromJson's numbers are float64, as Unmarshal makes them);
 *   dicts changed in place: set unset merge mergeOverwrite mustMerge
 *     mustMergeOverwrite (mergo's rules; a dict never holds itself);
 *   case and words: upper lower title untitle swapcase camelcase
 *     snakecase kebabcase initials abbrev abbrevboth wrap wrapWith (Go's
 *     unicode tables of the Go that generated core/src/unicode);
 *   paths and URLs: base dir clean ext isAbs osBase osDir osClean osExt
 *     osIsAbs (Linux) urlParse urlJoin; lists: chunk mustChunk;
 *   versions: semverCompare, semver (an object with Major Minor Patch
 *     Prerelease Metadata Original String Inc* Set* Compare Equal
 *     LessThan GreaterThan; it prints as its String);
 *   durations: duration durationRound; crypto: derivePassword (Master
 *     Password, a million steps per scrypt) decryptAES; and hello;
 *   dates: now date dateInZone date_in_zone htmlDate htmlDateInZone
 *     unixEpoch dateModify date_modify mustDateModify must_date_modify
 *     ago toDate mustToDate (Go's layouts, formatting and parsing;
 *     zones from /usr/share/zoneinfo, "Local" being /etc/localtime, an
 *     unknown zone UTC as in Sprig; a time is an object with String
 *     Format Unix UnixNano UTC Year Month Day Hour Minute Second
 *     Nanosecond YearDay Weekday, Month and Weekday as their names;
 *     typeOf says time.Time, and *semver.Version for semver's);
 *   regex: regexMatch regexFind regexFindAll regexReplaceAll
 *     regexReplaceAllLiteral regexSplit regexQuoteMeta and their must*
 *     forms (Go's regexp, core/src/regex: RE2 syntax, linear time).
 * Refused on purpose (a rendered werf.yaml must be the same bytes for the
 * same commit, its content-based tag covers it, and rendering never
 * reaches the network): te_render_parse fails with TE_EUNSUPPORTED,
 * `template: NAME:LINE: function "X" is not supported by tagexport: WHY`:
 *   random: randAlpha randAlphaNum randAscii randNumeric randBytes
 *     randInt shuffle uuidv4; salted or keyed at random: bcrypt htpasswd
 *     encryptAES genCA genCAWithKey genPrivateKey genSelfSignedCert
 *     genSelfSignedCertWithKey genSignedCert genSignedCertWithKey
 *     buildCustomCert; the network: getHostByName; env (werf's replaces
 *     it).
 */
int te_render_funcs_add_sprig(te_render_funcs *funcs, te_error *err);

/* ---- templates --------------------------------------------------------- */

typedef struct te_render_limits {
	unsigned int version; /* 1 */
	size_t input_max;
	unsigned int parse_depth;
	unsigned int call_depth;
	unsigned int exec_depth;
	size_t output_max;
	uint64_t steps_max;
} te_render_limits;

#define TE_RENDER_LIMITS_INIT                                                  \
	{                                                                      \
		1, (size_t)1 << 20, 200, 200, 5000, (size_t)16 << 20, 10000000 \
	}

/* funcs (may be NULL: builtins only) and limits (NULL: defaults) are
 * borrowed; funcs must outlive the set. */
int te_render_set_new(te_render_set **out, const te_render_funcs *funcs,
                      const te_render_limits *limits, te_error *err);
void te_render_set_free(te_render_set *set);

/*
 * Parse text as the template `name` (errors and positions name it) and
 * add it and every {{define}}/{{block}} in it to the set, as Go's
 * Template.New(name).Parse(text) does: a later non-empty definition
 * replaces an earlier one.  On error (TE_EINVALID, message
 * `template: NAME:LINE: ...`) the set is unchanged.
 */
int te_render_parse(te_render_set *set, const char *name, const char *text,
                    size_t len, te_error *err);

/*
 * Execute the template `name` with data as dot (borrowed; NULL: Go's nil
 * data).  *out gets the heap output (NUL-terminated, free() it) and
 * *out_len its length.  Errors: TE_ENOTFOUND for an unknown name,
 * TE_EINVALID for execution errors (`template: NAME:LINE:COL: executing
 * "NAME" at <NODE>: ...`) and exhausted budgets; nothing is returned then.
 */
int te_render_exec(char **out, size_t *out_len, te_render_set *set,
                   const char *name, te_render_value *data, te_error *err);

#endif

/*
 * render_int.h - private parts of the text/template engine (render.h).
 *
 * Structure follows Go's text/template: a lexer (lex.c) feeds a recursive
 * descent parser (parse.c) that builds one tree per template name, whose
 * nodes print themselves as Go's do (node.c); the executor (exec.c) walks
 * a tree; funcs.c holds the builtins and the function table; print.c is
 * Go's fmt for this value model; value.c the values.
 */
#ifndef TE_RENDER_INT_H
#define TE_RENDER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tagexport/buf.h"
#include "tagexport/render.h"

/* ---- values ---- */
struct te_render_value {
	unsigned int refs;
	te_render_kind kind;
	union {
		bool b;
		int64_t i;
		double f;
		struct {
			char *ptr;
			size_t len;
		} s;
		struct {
			te_render_value **items;
			size_t len, cap;
			/* empty and Go's nil slice (regexFindAll finding
			 * nothing): JSON null, else an empty list */
			bool nil;
		} list;
		struct {
			char **keys;
			size_t *klens;
			te_render_value **vals;
			size_t len, cap;
		} map;
	} u;
	/* te_render_value_object: its fields are these functions */
	const te_render_funcs *methods;
	/* how many of refs are list or map entries ("Mutable maps") */
	unsigned int held;
	/* an object's own data, owned (te_render__object_with) */
	te_render_value *inner;
};

/*
 * An executor value.  v == NULL is Go's invalid reflect.Value (printed as
 * "<no value>").  boxed marks a value read out of a list or map element:
 * Go sees those through interface{} and names that type in errors.
 */
struct te_xv {
	te_render_value *v;
	bool boxed;
};

/* ---- lexer ---- */
enum te_tok {
	TOK_ERROR,
	TOK_BOOL,
	TOK_CHAR,
	TOK_CHARCONST,
	TOK_COMMENT,
	TOK_COMPLEX,
	TOK_ASSIGN,
	TOK_DECLARE,
	TOK_EOF,
	TOK_FIELD,
	TOK_IDENT,
	TOK_LDELIM,
	TOK_LPAREN,
	TOK_NUMBER,
	TOK_PIPE,
	TOK_RAWSTRING,
	TOK_RDELIM,
	TOK_RPAREN,
	TOK_SPACE,
	TOK_STRING,
	TOK_TEXT,
	TOK_VARIABLE,
	TOK_KEYWORD, /* keywords follow */
	TOK_BLOCK,
	TOK_BREAK,
	TOK_CONTINUE,
	TOK_DOT,
	TOK_DEFINE,
	TOK_ELSE,
	TOK_END,
	TOK_IF,
	TOK_NIL,
	TOK_RANGE,
	TOK_TEMPLATE,
	TOK_WITH
};

struct te_item {
	enum te_tok typ;
	size_t pos;
	const char *val; /* into the input, or errmsg for TOK_ERROR */
	size_t len;
	int line;
};

#define TE_LEX_QUEUE 4

struct te_lexer {
	const char *input;
	size_t len;
	size_t pos, start;
	int line, start_line;
	int paren_depth;
	bool at_eof, done;
	bool break_ok, continue_ok;
	int state;
	struct te_item queue[TE_LEX_QUEUE];
	size_t qhead, qlen;
	char errmsg[160];
};

void te_lex_init(struct te_lexer *l, const char *input, size_t len,
                 bool break_ok, bool continue_ok);
struct te_item te_lex_next(struct te_lexer *l);

/* ---- nodes ---- */
enum te_node_type {
	N_TEXT,
	N_ACTION,
	N_BOOL,
	N_CHAIN,
	N_COMMAND,
	N_DOT,
	N_FIELD,
	N_IDENT,
	N_IF,
	N_LIST,
	N_NIL,
	N_NUMBER,
	N_PIPE,
	N_RANGE,
	N_STRING,
	N_TEMPLATE,
	N_VARIABLE,
	N_WITH,
	N_COMMENT,
	N_BREAK,
	N_CONTINUE,
	N_END,
	N_ELSE
};

struct te_tree;

/*
 * One node of a parse tree.  The fields after `text` overlap by node type
 * (a parse holds one node per token, so their size is the parse's memory):
 * kids/decl for N_LIST, N_COMMAND, N_PIPE; list/else_list for N_IF,
 * N_RANGE, N_WITH; quoted for N_STRING; the numbers for N_NUMBER; idents
 * for N_FIELD, N_VARIABLE, N_CHAIN.
 */
struct te_node {
	uint8_t type; /* enum te_node_type */
	bool truth;   /* N_BOOL */
	bool is_assign;
	bool is_int, is_uint, is_float, is_complex; /* N_NUMBER */
	size_t pos;
	struct te_tree *tree;
	struct te_node *next_alloc; /* every node of a parse, for freeing */
	/* N_ACTION/N_IF/N_RANGE/N_WITH/N_TEMPLATE pipe, N_CHAIN operand */
	struct te_node *pipe;
	/* N_TEXT bytes, N_STRING value, N_IDENT name, N_TEMPLATE name,
	 * N_COMMENT text, N_NUMBER source text */
	char *text;
	size_t text_len;
	union {
		struct {
			struct te_node **kids;
			uint32_t nkids, capkids;
			struct te_node **decl; /* N_PIPE declarations */
			size_t ndecl;
		};
		struct {
			struct te_node *list, *else_list;
		};
		struct {
			char *quoted; /* N_STRING source, quotes included */
			size_t quoted_len;
		};
		struct {
			int64_t i64;
			uint64_t u64;
			double f64;
		};
		struct {
			char **idents;
			size_t nidents;
		};
	};
};

struct te_tree {
	char *name;
	const char *parse_name; /* the name given to te_render_parse */
	const char *text;       /* the whole source text, owned by the src */
	struct te_node *root;   /* NULL: superseded by a later definition */
	struct te_source *src;
	bool added; /* survived parse.go's Tree.add */
};

/* One te_render_parse call: the text, its nodes and trees. */
struct te_source {
	char *name;
	char *text;
	size_t len;
	struct te_node *nodes;
	struct te_tree **trees;
	size_t ntrees, captrees;
	struct te_source *next;
};

/* ---- functions ---- */
struct te_exec;
typedef int (*te_builtin_fn)(struct te_exec *s, struct te_xv *out,
                             struct te_xv *args, size_t nargs, te_error *err);

/* Go parameter types that change how arguments are checked. */
#define TE_FN_REFLECT 1u     /* params are reflect.Value: missing stays  */
#define TE_FN_FMT_STRING 2u  /* first param is a string (printf) */
#define TE_FN_UNSUPPORTED 4u /* a known name we refuse at parse time */

struct te_func {
	const char *name; /* heap for the caller's table */
	te_render_fn fn;
	te_builtin_fn builtin;
	size_t min_args, max_args;
	void *payload;
	unsigned int flags;
};

struct te_render_funcs {
	struct te_func *items;
	size_t len, cap;
};

const struct te_func *te_render__find_func(const te_render_funcs *funcs,
                                           const char *name);
/* Register name as a function the engine knows but does not offer:
 * te_render_parse refuses a template that names it (sprig.c), giving
 * payload (a static string) as the reason. */
int te_render__funcs_add_unsupported(te_render_funcs *funcs, const char *name,
                                     te_render_fn fn, void *payload,
                                     te_error *err);

struct te_render_set {
	const te_render_funcs *funcs;
	te_render_limits limits;
	struct te_source *sources;
	/* name -> tree, the latest definition wins */
	struct te_tree **trees;
	size_t ntrees, captrees;
};

struct te_tree *te_render__lookup(const te_render_set *set, const char *name);

/* ---- values (value.c) ---- */
/*
 * Mutable maps.  Sprig's set, unset and merge* change a dict in place, as
 * Go changes a map: every holder of a reference (a variable, the data, an
 * enclosing list or dict) sees the change, so there is no copy on write.
 * What keeps that safe:
 *  - lists are never changed after they are built (Sprig's list functions
 *    return new lists), only maps are;
 *  - a map is never stored into itself or into a value it holds (Go
 *    would build a cycle and recurse forever printing it): set and merge
 *    refuse, so reference counts still free everything;
 *  - storing a value deepens the map by at most the value's height; when
 *    the map is itself an entry of a list or map (held), every value
 *    holding it may deepen too: that deepening of one execution is
 *    bounded (te_exec.deepened), so values stay under twice SP_DEPTH_MAX
 *    levels for the recursive walks (printing, freeing, copying);
 *  - range over a map walks a snapshot of its entries taken when the
 *    range starts, as Go's fmtsort does, so the body may change the map;
 *    code that walks a map while calling out does the same.
 * Objects (te_render_value_object) are Go structs: never changed.
 */
te_render_value *te_render__strown(char *s, size_t len);
/* Remove key from map (nothing when absent). */
void te_render__map_del(te_render_value *map, const char *key, size_t key_len);
/* An object (te_render_value_object) carrying inner, whose reference it
 * takes over; its methods find it in call->receiver->inner.  NULL: out of
 * memory. */
te_render_value *te_render__object_with(const te_render_funcs *methods,
                                        te_render_value *inner);
/* Go's Stringer: the result of v's String method when v is an object
 * that has one (owned), else NULL. */
te_render_value *te_render__stringer(const te_render_value *v);
/* The same with another method taking no arguments. */
te_render_value *te_render__stringer_named(const te_render_value *v,
                                           const char *method);
/* A new map with map's keys and references to its values; NULL: out of
 * memory. */
te_render_value *te_render__map_snapshot(const te_render_value *map);
const char *te_render__typename(const te_render_value *v, bool boxed);
bool te_render__truth(const te_render_value *v);

/* ---- node printing (parse.c) ---- */
int te_render__node_string(te_buf *b, const struct te_node *n, te_error *err);

/* ---- Go fmt (print.c) ---- */
/* A value printed into an error message: big enough for any value the
 * output cap allows, the message itself is cut at TE_ERROR_MSG_MAX. */
#define TE_RENDER_MSG_VALUE_MAX ((size_t)64 << 20)
/* fmt.Sprint / Sprintln / Sprintf of args (NULL entries are nil). */
int te_render__sprint(te_buf *b, te_render_value *const *args, size_t n,
                      bool ln, te_error *err);
int te_render__sprintf(te_buf *b, const char *fmt, size_t fmt_len,
                       te_render_value *const *args, size_t n, te_error *err);
/* %v of one value; v NULL prints "<nil>". */
int te_render__print_value(te_buf *b, const te_render_value *v, te_error *err);
/* Shortest decimal digits that read back as f (f >= 0): digits (18
 * bytes, no dot), their count *nd and the decimal point position *dp
 * (f = 0.digits * 10^dp), as strconv's shortest formatting. */
void te_render__shortest(double f, char *digits, int *nd, int *dp);
/* strconv.Quote */
int te_render__quote(te_buf *b, const char *s, size_t len, bool ascii,
                     te_error *err);
/* strconv.Unquote of a Go string or char literal; 0 on success. */
int te_render__unquote(char **out, size_t *out_len, const char *s, size_t len);
/* strconv.UnquoteChar of a 'c' literal: 0, -1 bad syntax, -2 more than
 * one character. */
int te_render__char_const(const char *s, size_t len, int32_t *r);
/* Decode one UTF-8 rune as Go does (invalid: 0xFFFD, width 1). */
int32_t te_render__rune(const char *s, size_t len, size_t *width);
size_t te_render__put_rune(char *dst, int32_t r);
bool te_render__is_print(int32_t r);

/* ---- the executor state (exec.c), seen by builtins ---- */
struct te_var {
	const char *name;
	struct te_xv val;
};

struct te_exec {
	te_render_set *set;
	struct te_tree *tmpl;       /* the template executing */
	const struct te_node *node; /* current node, for errors */
	te_buf out;
	struct te_var *vars;
	size_t nvars, capvars, base; /* base: first var of this call */
	unsigned int calls;          /* nested {{template}} calls */
	unsigned int nest;           /* executor recursion */
	uint64_t steps;
	/* levels that in-place map changes may have added to values
	 * (sprig_dicts.c), at most SP_DEPTH_MAX */
	unsigned int deepened;
	/* the object of the method call about to start (eval_call takes it) */
	const te_render_value *receiver_next;
	/* a budget ran out: 1, then 2 once a nested include's error has been
	 * wrapped (outer includes pass it up as it is, not 200 times) */
	int budget;
	te_error *err;
};

/* What a function sees of the running execution (render.h); receiver:
 * the object whose method this is (NULL for functions).  s is NULL when
 * a String method is called to print its object. */
struct te_render_call {
	struct te_exec *s;
	const te_render_value *receiver;
};

/* ---- builtins (funcs.c) ---- */
int te_render__builtins_find(const struct te_func **out, const char *name);
bool te_render__xtruth(const struct te_xv *x);

#endif

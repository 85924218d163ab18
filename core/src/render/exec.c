/*
 * exec.c - the executor of Go's text/template (text/template/exec.go):
 * walks a parsed tree with dot and the variable stack, evaluating
 * pipelines, fields, map keys, function calls, if/with/range/template.
 *
 * Every function returns 0, a negative te_code (the error is in s->err),
 * or, from walk(), WALK_BREAK / WALK_CONTINUE.  Values in struct te_xv
 * own one reference.  Budgets: s->steps, s->calls, s->nest, the output
 * buffer's cap (render.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "render/render_int.h"

#define WALK_BREAK 1
#define WALK_CONTINUE 2

static const struct te_xv missing = {NULL, false};

static void xv_drop(struct te_xv *x)
{
	te_render_value_unref(x->v);
	x->v = NULL;
	x->boxed = false;
}

static struct te_xv xv_copy(const struct te_xv *x)
{
	struct te_xv c = {te_render_value_ref(x->v), x->boxed};

	return c;
}

/* evalPipeline's "dig down one level": a value seen through interface{}
 * becomes the thing inside; a nil interface becomes the invalid value. */
static void xv_unbox(struct te_xv *x)
{
	if (x->v && x->v->kind == TE_RENDER_NIL)
		xv_drop(x);
	x->boxed = false;
}

static void at(struct te_exec *s, const struct te_node *n)
{
	s->node = n;
}

static int exec_errorf(struct te_exec *s, const char *fmt, ...) TE_PRINTF(2, 3);

static int exec_errorf(struct te_exec *s, const char *fmt, ...)
{
	char msg[TE_ERROR_MSG_MAX];
	te_buf ctx = TE_BUF_INIT(TE_ERROR_MSG_MAX);
	te_error e = TE_ERROR_INIT;
	const struct te_tree *t;
	size_t pos, i, line = 1, col;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!s->node) {
		return te_error_set(s->err, TE_EINVALID, "template: %s: %s",
		                    s->tmpl->name, msg);
	}
	t = s->node->tree ? s->node->tree : s->tmpl;
	pos = s->node->pos;
	col = pos;
	for (i = 0; i < pos; i++) {
		if (t->text[i] == '\n') {
			line++;
			col = pos - i - 1;
		}
	}
	te_render__node_string(&ctx, s->node, &e);
	te_error_set(s->err, TE_EINVALID,
	             "template: %s:%zu:%zu: executing \"%s\" at <%s>: %s",
	             t->parse_name, line, col, s->tmpl->name, ctx.ptr, msg);
	te_buf_dispose(&ctx);
	return s->err->code;
}

static int oom(struct te_exec *s)
{
	return te_error_set(s->err, TE_ENOMEM, "out of memory");
}

static int steps(struct te_exec *s, uint64_t n)
{
	s->steps += n;
	if (s->steps > s->set->limits.steps_max) {
		s->budget = s->budget ? s->budget : 1;
		return exec_errorf(
		    s, "work budget of %llu steps exceeded",
		    (unsigned long long)s->set->limits.steps_max);
	}
	return 0;
}

static int step(struct te_exec *s)
{
	return steps(s, 1);
}

/* Work a function call does beyond the call itself: reading or building
 * long strings and lists (one step per 64 bytes or 8 elements), so that
 * a loop over huge printf or eq calls ends within the budget too. */
static uint64_t value_cost(const te_render_value *v)
{
	switch (te_render_value_kind(v)) {
	case TE_RENDER_STRING:
		return v->u.s.len / 64;
	case TE_RENDER_LIST:
	case TE_RENDER_MAP:
		return te_render_value_len(v) / 8;
	default:
		return 0;
	}
}

static int enter(struct te_exec *s)
{
	if (++s->nest > s->set->limits.exec_depth) {
		s->nest--;
		s->budget = s->budget ? s->budget : 1;
		return exec_errorf(s, "exceeded maximum nesting depth (%u)",
		                   s->set->limits.exec_depth);
	}
	return 0;
}

/* Go's %v of a value for messages ("range can't iterate over 3"). */
static void value_text(te_buf *b, const te_render_value *v)
{
	te_error e = TE_ERROR_INIT;

	te_render__print_value(b, v, &e);
}

/* ---- variables ---- */

static int push_var(struct te_exec *s, const char *name, struct te_xv val)
{
	struct te_var *vars;
	size_t cap;

	if (s->nvars == s->capvars) {
		cap = s->capvars ? s->capvars * 2 : 16;
		vars = realloc(s->vars, cap * sizeof(*vars));
		if (!vars) {
			te_render_value_unref(val.v);
			return oom(s);
		}
		s->vars = vars;
		s->capvars = cap;
	}
	s->vars[s->nvars].name = name;
	s->vars[s->nvars++].val = val;
	return 0;
}

static void pop_vars(struct te_exec *s, size_t mark)
{
	while (s->nvars > mark)
		xv_drop(&s->vars[--s->nvars].val);
}

static struct te_var *find_var(struct te_exec *s, const char *name)
{
	size_t i;

	for (i = s->nvars; i > s->base; i--)
		if (strcmp(s->vars[i - 1].name, name) == 0)
			return &s->vars[i - 1];
	return NULL;
}

/* ---- evaluation ---- */

static int eval_pipeline(struct te_exec *s, const struct te_xv *dot,
                         const struct te_node *pipe, struct te_xv *out);
static int eval_command(struct te_exec *s, const struct te_xv *dot,
                        const struct te_node *cmd, const struct te_xv *final,
                        struct te_xv *out);
static int walk(struct te_exec *s, const struct te_xv *dot,
                const struct te_node *n);

static int eval_arg(struct te_exec *s, const struct te_xv *dot,
                    const struct te_node *n, unsigned int ptype,
                    struct te_xv *out);

static int node_text(te_buf *b, const struct te_node *n)
{
	te_error e = TE_ERROR_INIT;

	return te_render__node_string(b, n, &e);
}

static int not_a_function(struct te_exec *s, const struct te_node *const *args,
                          size_t nargs, const struct te_xv *final)
{
	te_buf b = TE_BUF_INIT(4096);
	int rc = 0;

	if (nargs > 1 || final) {
		node_text(&b, args[0]);
		rc = exec_errorf(s, "can't give argument to non-function %s",
		                 b.ptr);
	}
	te_buf_dispose(&b);
	return rc;
}

static int eval_call(struct te_exec *s, const struct te_xv *dot,
                     const struct te_func *f, const struct te_node *node,
                     const char *name, const struct te_node *const *args,
                     size_t nargs, const struct te_xv *final,
                     struct te_xv *out);

/* A method of a te_render_value_object, called as Go's evalField calls a
 * method: args[0] is the field itself, the rest are its arguments. */
static int eval_method(struct te_exec *s, const struct te_xv *dot,
                       const struct te_node *node, const struct te_func *f,
                       const char *name, const struct te_node *const *args,
                       size_t nargs, const struct te_xv *final,
                       struct te_xv *receiver)
{
	struct te_xv r = missing;

	s->receiver_next = receiver->v;
	if (eval_call(s, dot, f, node, name, nargs ? args + 1 : NULL,
	              nargs ? nargs - 1 : 0, final, &r) < 0)
		return s->err->code;
	xv_drop(receiver);
	*receiver = r;
	return 0;
}

/* evalField: receiver.name, a map key in this value model (or a method of
 * a te_render_value_object). */
static int eval_field(struct te_exec *s, const struct te_xv *dot,
                      const struct te_node *node, const char *name,
                      const struct te_node *const *args, size_t nargs,
                      const struct te_xv *final, struct te_xv *receiver)
{
	const te_render_value *v = receiver->v;
	const char *typ = te_render__typename(v, receiver->boxed);
	const struct te_func *m;
	te_render_value *r;

	if (v && v->methods &&
	    (m = te_render__find_func(v->methods, name)) != NULL)
		return eval_method(s, dot, node, m, name, args, nargs, final,
		                   receiver);
	if (!v)
		return 0; /* missingkey=default: stays invalid */
	if (v->kind == TE_RENDER_NIL) {
		if (!receiver->boxed) {
			xv_drop(receiver);
			return 0;
		}
		return exec_errorf(s, "nil pointer evaluating %s.%s", typ,
		                   name);
	}
	if (v->kind != TE_RENDER_MAP)
		return exec_errorf(s, "can't evaluate field %s in type %s",
		                   name, typ);
	if (nargs > 1 || final)
		return exec_errorf(s, "%s is not a method but has arguments",
		                   name);
	r = te_render_map_get(v, name, strlen(name));
	te_render_value_ref(r);
	xv_drop(receiver);
	receiver->v = r;
	receiver->boxed = r != NULL;
	return 0;
}

static int eval_field_chain(struct te_exec *s, const struct te_xv *dot,
                            const struct te_node *node, struct te_xv *receiver,
                            char *const *idents, size_t n,
                            const struct te_node *const *args, size_t nargs,
                            const struct te_xv *final, struct te_xv *out)
{
	size_t i;

	for (i = 0; i + 1 < n; i++)
		if (eval_field(s, dot, node, idents[i], NULL, 0, NULL,
		               receiver) < 0)
			goto fail;
	if (eval_field(s, dot, node, idents[n - 1], args, nargs, final,
	               receiver) < 0)
		goto fail;
	*out = *receiver;
	return 0;
fail:
	xv_drop(receiver);
	return s->err->code;
}

static int eval_field_node(struct te_exec *s, const struct te_xv *dot,
                           const struct te_node *field,
                           const struct te_node *const *args, size_t nargs,
                           const struct te_xv *final, struct te_xv *out)
{
	struct te_xv r = xv_copy(dot);

	at(s, field);
	return eval_field_chain(s, dot, field, &r, field->idents,
	                        field->nidents, args, nargs, final, out);
}

static int eval_variable_node(struct te_exec *s, const struct te_xv *dot,
                              const struct te_node *var,
                              const struct te_node *const *args, size_t nargs,
                              const struct te_xv *final, struct te_xv *out)
{
	struct te_var *v;
	struct te_xv r;

	at(s, var);
	v = find_var(s, var->idents[0]);
	if (!v)
		return exec_errorf(s, "undefined variable: %s", var->idents[0]);
	if (var->nidents == 1) {
		if (not_a_function(s, args, nargs, final) < 0)
			return s->err->code;
		*out = xv_copy(&v->val);
		return 0;
	}
	r = xv_copy(&v->val);
	return eval_field_chain(s, dot, var, &r, var->idents + 1,
	                        var->nidents - 1, args, nargs, final, out);
}

static int eval_chain_node(struct te_exec *s, const struct te_xv *dot,
                           const struct te_node *chain,
                           const struct te_node *const *args, size_t nargs,
                           const struct te_xv *final, struct te_xv *out)
{
	struct te_xv r = missing;
	te_buf b = TE_BUF_INIT(4096);

	at(s, chain);
	if (chain->pipe->type == N_NIL) {
		node_text(&b, chain);
		exec_errorf(s, "indirection through explicit nil in %s", b.ptr);
		te_buf_dispose(&b);
		return s->err->code;
	}
	if (eval_arg(s, dot, chain->pipe, TE_FN_REFLECT, &r) < 0)
		return s->err->code;
	return eval_field_chain(s, dot, chain, &r, chain->idents,
	                        chain->nidents, args, nargs, final, out);
}

/* idealConstant: a number literal where no type is known. */
static int ideal_constant(struct te_exec *s, const struct te_node *n,
                          struct te_xv *out)
{
	const char *t = n->text;
	bool hex_int = strlen(t) > 2 && t[0] == '0' &&
	               (t[1] == 'x' || t[1] == 'X') && !strpbrk(t, "pP");

	at(s, n);
	out->boxed = false;
	if (n->is_complex)
		return exec_errorf(s, "complex constant %s is not supported",
		                   t);
	if (n->is_float && !hex_int && t[0] != '\'' && strpbrk(t, ".eEpP"))
		out->v = te_render_value_float(n->f64);
	else if (n->is_int)
		out->v = te_render_value_int(n->i64);
	else if (n->is_uint)
		return exec_errorf(s, "%s overflows int", t);
	else
		return 0;
	return out->v ? 0 : oom(s);
}

static int literal(struct te_exec *s, const struct te_xv *dot,
                   const struct te_node *n, struct te_xv *out)
{
	out->boxed = false;
	switch (n->type) {
	case N_BOOL:
		out->v = te_render_value_bool(n->truth);
		break;
	case N_DOT:
		*out = xv_copy(dot);
		return 0;
	case N_NUMBER:
		return ideal_constant(s, n, out);
	case N_STRING:
		out->v = te_render_value_string(n->text, n->text_len);
		break;
	default:
		return exec_errorf(s, "can't handle assignment of node to "
		                      "empty interface argument");
	}
	return out->v ? 0 : oom(s);
}

/* validateType for the parameter kinds the engine knows. */
static int validate(struct te_exec *s, struct te_xv *v, unsigned int ptype)
{
	if (ptype & TE_FN_FMT_STRING) {
		if (!v->v)
			return exec_errorf(s, "invalid value; expected string");
		if (v->v->kind != TE_RENDER_STRING) {
			const char *got = te_render__typename(
			    v->v, v->v->kind == TE_RENDER_NIL && v->boxed);
			exec_errorf(s,
			            "wrong type for value; expected "
			            "string; got "
			            "%s",
			            got);
			xv_drop(v);
			return s->err->code;
		}
		return 0;
	}
	if (!(ptype & TE_FN_REFLECT) && !v->v) {
		/* an untyped nil for an interface{} parameter */
		v->v = te_render_value_nil();
		v->boxed = false;
		return v->v ? 0 : oom(s);
	}
	return 0;
}

static int eval_function(struct te_exec *s, const struct te_xv *dot,
                         const struct te_node *ident, const struct te_node *cmd,
                         const struct te_node *const *args, size_t nargs,
                         const struct te_xv *final, struct te_xv *out);

static int eval_arg(struct te_exec *s, const struct te_xv *dot,
                    const struct te_node *n, unsigned int ptype,
                    struct te_xv *out)
{
	te_buf b = TE_BUF_INIT(4096);
	int rc;

	*out = missing;
	at(s, n);
	switch (n->type) {
	case N_DOT:
		*out = xv_copy(dot);
		break;
	case N_NIL:
		if (ptype & TE_FN_FMT_STRING)
			return exec_errorf(s, "cannot assign nil to string");
		return validate(s, out, ptype);
	case N_FIELD:
		rc = eval_field_node(s, dot, n, &n, 1, NULL, out);
		if (rc < 0)
			return rc;
		break;
	case N_VARIABLE:
		rc = eval_variable_node(s, dot, n, NULL, 0, NULL, out);
		if (rc < 0)
			return rc;
		break;
	case N_PIPE:
		rc = eval_pipeline(s, dot, n, out);
		if (rc < 0)
			return rc;
		break;
	case N_IDENT:
		rc = eval_function(s, dot, n, n, NULL, 0, NULL, out);
		if (rc < 0)
			return rc;
		break;
	case N_CHAIN:
		rc = eval_chain_node(s, dot, n, NULL, 0, NULL, out);
		if (rc < 0)
			return rc;
		break;
	default:
		if ((ptype & TE_FN_FMT_STRING) && n->type != N_STRING) {
			node_text(&b, n);
			exec_errorf(s, "expected string; found %s", b.ptr);
			te_buf_dispose(&b);
			return s->err->code;
		}
		return literal(s, dot, n, out);
	}
	return validate(s, out, ptype);
}

static int arity_error(struct te_exec *s, const struct te_func *f,
                       const char *name, size_t nargs, size_t num_in)
{
	if (f->max_args == TE_RENDER_VARIADIC)
		return exec_errorf(s,
		                   "wrong number of args for %s: want at least "
		                   "%zu got %zu",
		                   name, f->min_args, nargs);
	if (f->min_args == f->max_args)
		return exec_errorf(s,
		                   "wrong number of args for %s: want %zu got "
		                   "%zu",
		                   name, f->min_args, num_in);
	if (num_in < f->min_args)
		return exec_errorf(s,
		                   "wrong number of args for %s: want at least "
		                   "%zu got %zu",
		                   name, f->min_args, num_in);
	return exec_errorf(s,
	                   "wrong number of args for %s: want at most %zu "
	                   "got %zu",
	                   name, f->max_args, num_in);
}

/* and/or: evaluate arguments only until the result is known (Go 1.18).
 */
static int eval_and_or(struct te_exec *s, const struct te_xv *dot,
                       const char *name, const struct te_node *const *args,
                       size_t nargs, const struct te_xv *final,
                       struct te_xv *out)
{
	bool is_or = name[0] == 'o';
	struct te_xv v = missing;
	size_t i;

	for (i = 0; i < nargs; i++) {
		xv_drop(&v);
		if (eval_arg(s, dot, args[i], TE_FN_REFLECT, &v) < 0)
			return s->err->code;
		if (te_render__xtruth(&v) == is_or) {
			*out = v;
			return 0;
		}
	}
	if (final) {
		xv_drop(&v);
		v = xv_copy(final);
	}
	*out = v;
	return 0;
}

static int call_user(struct te_exec *s, const struct te_func *f,
                     const te_render_value *receiver, struct te_xv *argv,
                     size_t n, struct te_xv *out, te_error *ferr)
{
	te_render_value **a = calloc(n ? n : 1, sizeof(*a));
	struct te_render_call call = {s, receiver};
	te_render_value *r = NULL;
	size_t i;
	int rc;

	if (!a)
		return te_error_set(ferr, TE_ENOMEM, "out of memory");
	for (i = 0; i < n; i++)
		a[i] = argv[i].v;
	rc = f->fn(&r, &call, a, n, f->payload, ferr);
	free(a);
	if (rc < 0) {
		te_render_value_unref(r);
		if (!ferr->code)
			te_error_set(ferr, rc, "function failed");
		return ferr->code;
	}
	if (!r)
		return te_error_set(ferr, TE_ERROR, "returned no value");
	out->v = r;
	out->boxed = false;
	return 0;
}

static int eval_call(struct te_exec *s, const struct te_xv *dot,
                     const struct te_func *f, const struct te_node *node,
                     const char *name, const struct te_node *const *args,
                     size_t nargs, const struct te_xv *final, struct te_xv *out)
{
	size_t num_in = nargs + (final ? 1 : 0), i, fixed;
	struct te_xv *argv = NULL;
	te_error ferr = TE_ERROR_INIT;
	/* a method's object, taken before the arguments run other calls */
	const te_render_value *receiver = s->receiver_next;
	int rc;

	s->receiver_next = NULL;
	if (step(s) < 0)
		return s->err->code;
	if ((f->max_args == TE_RENDER_VARIADIC && num_in < f->min_args) ||
	    (f->max_args != TE_RENDER_VARIADIC &&
	     (num_in < f->min_args || num_in > f->max_args)))
		return arity_error(s, f, name, nargs, num_in);
	if (f->builtin && (!strcmp(name, "and") || !strcmp(name, "or")))
		return eval_and_or(s, dot, name, args, nargs, final, out);
	argv = calloc(num_in ? num_in : 1, sizeof(*argv));
	if (!argv)
		return oom(s);
	fixed = f->max_args == TE_RENDER_VARIADIC ? f->min_args : num_in;
	for (i = 0; i < nargs; i++) {
		unsigned int pt = f->flags & TE_FN_REFLECT;

		if (i == 0 && i < fixed)
			pt |= f->flags & TE_FN_FMT_STRING;
		if (eval_arg(s, dot, args[i], pt, &argv[i]) < 0)
			goto fail;
	}
	if (final) {
		unsigned int pt = f->flags & TE_FN_REFLECT;

		if (nargs == 0)
			pt |= f->flags & TE_FN_FMT_STRING;
		argv[nargs] = xv_copy(final);
		if (validate(s, &argv[nargs], pt) < 0)
			goto fail;
	}
	if (f->builtin)
		rc = f->builtin(s, out, argv, num_in, &ferr);
	else
		rc = call_user(s, f, receiver, argv, num_in, out, &ferr);
	if (rc == 0) {
		uint64_t cost = value_cost(out->v);

		for (i = 0; i < num_in; i++)
			cost += value_cost(argv[i].v);
		if (cost && steps(s, cost) < 0) {
			xv_drop(out);
			goto fail;
		}
	}
	if (rc < 0) {
		at(s, node);
		if (ferr.code == TE_ENOMEM)
			te_error_set(s->err, TE_ENOMEM, "out of memory");
		else if (s->budget == 2 && !f->builtin)
			/* from a nested include, already wrapped once */
			te_error_set(s->err, ferr.code, "%s", ferr.msg);
		else
			exec_errorf(s, "error calling %s: %s", name, ferr.msg);
		if (s->budget && !f->builtin)
			s->budget = 2;
		goto fail;
	}
	for (i = 0; i < num_in; i++)
		xv_drop(&argv[i]);
	free(argv);
	return 0;
fail:
	for (i = 0; i < num_in; i++)
		xv_drop(&argv[i]);
	free(argv);
	return s->err->code;
}

static const struct te_func *find_func(const struct te_exec *s,
                                       const char *name)
{
	const struct te_func *f = te_render__find_func(s->set->funcs, name);

	if (!f)
		te_render__builtins_find(&f, name);
	return f;
}

static int eval_function(struct te_exec *s, const struct te_xv *dot,
                         const struct te_node *ident, const struct te_node *cmd,
                         const struct te_node *const *args, size_t nargs,
                         const struct te_xv *final, struct te_xv *out)
{
	const struct te_func *f;

	at(s, ident);
	f = find_func(s, ident->text);
	if (!f)
		return exec_errorf(s, "\"%s\" is not a defined function",
		                   ident->text);
	return eval_call(s, dot, f, cmd, ident->text, args ? args + 1 : NULL,
	                 nargs ? nargs - 1 : 0, final, out);
}

static int eval_command(struct te_exec *s, const struct te_xv *dot,
                        const struct te_node *cmd, const struct te_xv *final,
                        struct te_xv *out)
{
	const struct te_node *const *args =
	    (const struct te_node *const *)cmd->kids;
	const struct te_node *first = cmd->kids[0];
	size_t n = cmd->nkids;

	*out = missing;
	switch (first->type) {
	case N_FIELD:
		return eval_field_node(s, dot, first, args, n, final, out);
	case N_CHAIN:
		return eval_chain_node(s, dot, first, args, n, final, out);
	case N_IDENT:
		return eval_function(s, dot, first, cmd, args, n, final, out);
	case N_PIPE:
		if (not_a_function(s, args, n, final) < 0)
			return s->err->code;
		return eval_pipeline(s, dot, first, out);
	case N_VARIABLE:
		return eval_variable_node(s, dot, first, args, n, final, out);
	default:
		break;
	}
	at(s, first);
	if (not_a_function(s, args, n, final) < 0)
		return s->err->code;
	if (first->type == N_NIL)
		return exec_errorf(s, "nil is not a command");
	return literal(s, dot, first, out);
}

static int eval_pipeline(struct te_exec *s, const struct te_xv *dot,
                         const struct te_node *pipe, struct te_xv *out)
{
	struct te_xv value = missing, next;
	struct te_var *var;
	size_t i;
	int rc = 0;

	*out = missing;
	if (!pipe)
		return 0;
	if (enter(s) < 0)
		return s->err->code;
	at(s, pipe);
	for (i = 0; i < pipe->nkids; i++) {
		rc = eval_command(s, dot, pipe->kids[i], i ? &value : NULL,
		                  &next);
		xv_drop(&value);
		if (rc < 0)
			goto done;
		value = next;
		xv_unbox(&value);
	}
	for (i = 0; i < pipe->ndecl; i++) {
		const char *name = pipe->decl[i]->idents[0];

		if (pipe->is_assign) {
			var = find_var(s, name);
			if (!var) {
				rc = exec_errorf(s, "undefined variable: %s",
				                 name);
				goto done;
			}
			xv_drop(&var->val);
			var->val = xv_copy(&value);
		} else {
			rc = push_var(s, name, xv_copy(&value));
			if (rc < 0)
				goto done;
		}
	}
	*out = value;
	value = missing;
done:
	xv_drop(&value);
	s->nest--;
	return rc;
}

/* ---- walking ---- */

static int print_out(struct te_exec *s, const struct te_node *n,
                     const struct te_xv *v)
{
	te_error e = TE_ERROR_INIT;

	at(s, n);
	if (!v->v)
		te_buf_puts(&s->out, "<no value>", &e);
	else
		te_render__print_value(&s->out, v->v, &e);
	if (e.code == TE_EINVALID) {
		s->budget = s->budget ? s->budget : 1;
		return exec_errorf(s, "output exceeds the limit of %zu bytes",
		                   s->set->limits.output_max);
	}
	if (e.code)
		return te_error_set(s->err, e.code, "%s", e.msg);
	return 0;
}

static int walk_list(struct te_exec *s, const struct te_xv *dot,
                     const struct te_node *list)
{
	size_t i;
	int rc;

	for (i = 0; i < list->nkids; i++) {
		rc = walk(s, dot, list->kids[i]);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static int walk_if_with(struct te_exec *s, const struct te_xv *dot,
                        const struct te_node *n)
{
	size_t mark = s->nvars;
	struct te_xv val;
	int rc;

	rc = eval_pipeline(s, dot, n->pipe, &val);
	if (rc < 0)
		goto done;
	if (te_render__xtruth(&val))
		rc = walk(s, n->type == N_WITH ? &val : dot, n->list);
	else if (n->else_list)
		rc = walk(s, dot, n->else_list);
done:
	xv_drop(&val);
	pop_vars(s, mark);
	return rc;
}

/* One range iteration: $elem (and $index) then the body. */
static int range_once(struct te_exec *s, const struct te_node *r, size_t mark,
                      struct te_xv index, struct te_xv elem)
{
	const struct te_node *pipe = r->pipe;
	int rc;

	at(s, r);
	if (step(s) < 0) {
		rc = s->err->code;
		goto done;
	}
	if (pipe->ndecl > 0) {
		xv_drop(&s->vars[s->nvars - 1].val);
		s->vars[s->nvars - 1].val = xv_copy(&elem);
	}
	if (pipe->ndecl > 1) {
		xv_drop(&s->vars[s->nvars - 2].val);
		s->vars[s->nvars - 2].val = xv_copy(&index);
	}
	rc = walk(s, &elem, r->list);
	pop_vars(s, mark);
	if (rc == WALK_CONTINUE)
		rc = 0;
done:
	xv_drop(&index);
	xv_drop(&elem);
	return rc;
}

/* A map is walked through a snapshot of its entries (render_int.h,
 * "Mutable maps"): the body may set or unset its keys. */
static int range_items(struct te_exec *s, const struct te_node *r, size_t mark,
                       const te_render_value *v)
{
	struct te_xv idx, elem;
	te_render_value *snap = NULL;
	size_t i, n = te_render_value_len(v);
	int rc = 0;

	if (v->kind == TE_RENDER_MAP) {
		snap = te_render__map_snapshot(v);
		if (!snap)
			return oom(s);
		v = snap;
	}

	for (i = 0; i < n && rc == 0; i++) {
		elem.boxed = true;
		if (v->kind == TE_RENDER_LIST) {
			idx.v = te_render_value_int((int64_t)i);
			idx.boxed = false;
			elem.v = te_render_value_ref(v->u.list.items[i]);
		} else {
			idx.v = te_render_value_string(v->u.map.keys[i],
			                               v->u.map.klens[i]);
			idx.boxed = false;
			elem.v = te_render_value_ref(v->u.map.vals[i]);
		}
		if (!idx.v) {
			xv_drop(&elem);
			rc = oom(s);
			break;
		}
		rc = range_once(s, r, mark, idx, elem);
	}
	te_render_value_unref(snap);
	return rc == WALK_BREAK ? 0 : rc;
}

static int range_int(struct te_exec *s, const struct te_node *r, size_t mark,
                     const te_render_value *v)
{
	struct te_xv idx, elem;
	int64_t i;
	int rc = 0;

	if (r->pipe->ndecl > 1) {
		te_buf b = TE_BUF_INIT(TE_RENDER_MSG_VALUE_MAX);

		value_text(&b, v);
		exec_errorf(s,
		            "can't use %s to iterate over more than one "
		            "variable",
		            b.ptr);
		te_buf_dispose(&b);
		return s->err->code;
	}
	for (i = 0; i < v->u.i && rc == 0; i++) {
		idx.v = te_render_value_int(i);
		elem.v = te_render_value_int(i);
		idx.boxed = elem.boxed = false;
		if (!idx.v || !elem.v) {
			xv_drop(&idx);
			xv_drop(&elem);
			return oom(s);
		}
		rc = range_once(s, r, mark, idx, elem);
	}
	return rc == WALK_BREAK ? 0 : rc;
}

static int walk_range(struct te_exec *s, const struct te_xv *dot,
                      const struct te_node *r)
{
	size_t mark0 = s->nvars, mark;
	struct te_xv val;
	const te_render_value *v;
	bool ran = false;
	int rc;

	at(s, r);
	rc = eval_pipeline(s, dot, r->pipe, &val);
	if (rc < 0)
		goto done;
	mark = s->nvars;
	v = val.v;
	switch (te_render_value_kind(v)) {
	case TE_RENDER_LIST:
	case TE_RENDER_MAP:
		if (!v || te_render_value_len(v) == 0)
			break;
		ran = true;
		rc = range_items(s, r, mark, v);
		break;
	case TE_RENDER_INT:
		if (v->u.i <= 0 && r->pipe->ndecl <= 1)
			break;
		ran = true;
		rc = range_int(s, r, mark, v);
		break;
	case TE_RENDER_NIL:
		break;
	default: {
		te_buf b = TE_BUF_INIT(TE_RENDER_MSG_VALUE_MAX);

		value_text(&b, v);
		rc = exec_errorf(s, "range can't iterate over %s", b.ptr);
		te_buf_dispose(&b);
	}
	}
	if (!ran && rc == 0 && r->else_list)
		rc = walk(s, dot, r->else_list);
done:
	xv_drop(&val);
	pop_vars(s, mark0);
	return rc;
}

static int walk_template(struct te_exec *s, const struct te_xv *dot,
                         const struct te_node *t)
{
	struct te_tree *tmpl, *saved_tmpl = s->tmpl;
	size_t saved_base = s->base, mark;
	struct te_xv newdot;
	te_buf b = TE_BUF_INIT(4096);
	int rc;

	at(s, t);
	tmpl = te_render__lookup(s->set, t->text);
	if (!tmpl) {
		te_error e = TE_ERROR_INIT;

		te_render__quote(&b, t->text, t->text_len, false, &e);
		rc = exec_errorf(s, "template %s not defined", b.ptr);
		te_buf_dispose(&b);
		return rc;
	}
	if (s->calls >= s->set->limits.call_depth) {
		s->budget = s->budget ? s->budget : 1;
		return exec_errorf(s, "exceeded maximum template depth (%u)",
		                   s->set->limits.call_depth);
	}
	rc = eval_pipeline(s, dot, t->pipe, &newdot);
	if (rc < 0)
		return rc;
	/* no dynamic scoping: the callee sees only $ */
	mark = s->nvars;
	rc = push_var(s, "$", xv_copy(&newdot));
	if (rc < 0)
		goto done;
	s->base = mark;
	s->tmpl = tmpl;
	s->calls++;
	rc = walk(s, &newdot, tmpl->root);
	s->calls--;
	s->tmpl = saved_tmpl;
	s->base = saved_base;
	pop_vars(s, mark);
done:
	xv_drop(&newdot);
	return rc;
}

static int walk_node(struct te_exec *s, const struct te_xv *dot,
                     const struct te_node *n)
{
	struct te_xv val;
	te_error e = TE_ERROR_INIT;
	int rc;

	switch (n->type) {
	case N_ACTION:
		rc = eval_pipeline(s, dot, n->pipe, &val);
		if (rc == 0 && n->pipe->ndecl == 0)
			rc = print_out(s, n, &val);
		xv_drop(&val);
		return rc;
	case N_BREAK:
		return WALK_BREAK;
	case N_CONTINUE:
		return WALK_CONTINUE;
	case N_COMMENT:
		return 0;
	case N_IF:
	case N_WITH:
		return walk_if_with(s, dot, n);
	case N_LIST:
		return walk_list(s, dot, n);
	case N_RANGE:
		return walk_range(s, dot, n);
	case N_TEMPLATE:
		return walk_template(s, dot, n);
	case N_TEXT:
		if (te_buf_put(&s->out, n->text, n->text_len, &e) < 0) {
			if (e.code == TE_EINVALID) {
				s->budget = s->budget ? s->budget : 1;
				return exec_errorf(
				    s,
				    "output exceeds the limit of %zu "
				    "bytes",
				    s->set->limits.output_max);
			}
			return te_error_set(s->err, e.code, "%s", e.msg);
		}
		return 0;
	default:
		return exec_errorf(s, "unknown node");
	}
}

static int walk(struct te_exec *s, const struct te_xv *dot,
                const struct te_node *n)
{
	int rc;

	at(s, n);
	if (step(s) < 0 || enter(s) < 0)
		return s->err->code;
	rc = walk_node(s, dot, n);
	s->nest--;
	return rc;
}

/*
 * A nested execution for a function (include): the callee gets its own
 * output buffer, variables and error sink, and shares the budgets.
 */
int te_render_call_template(char **out, size_t *out_len, te_render_call *call,
                            const char *name, te_render_value *dot,
                            te_error *err)
{
	struct te_exec *s = call->s;
	struct te_tree *saved_tmpl = s->tmpl;
	const struct te_node *saved_node = s->node;
	size_t saved_base = s->base, mark = s->nvars;
	te_error *saved_err = s->err;
	te_buf saved_out = s->out;
	struct te_xv d = {dot, false};
	int rc;

	*out = NULL;
	*out_len = 0;
	if (dot && dot->kind == TE_RENDER_NIL)
		d.v = NULL;
	s->tmpl = te_render__lookup(s->set, name);
	if (!s->tmpl) {
		s->tmpl = saved_tmpl;
		return te_error_set(err, TE_ENOTFOUND,
		                    "template: no template \"%s\" associated "
		                    "with template \"%s\"",
		                    name, s->tmpl->name);
	}
	if (s->calls >= s->set->limits.call_depth) {
		s->tmpl = saved_tmpl;
		s->budget = s->budget ? s->budget : 1;
		return te_error_set(err, TE_EINVALID,
		                    "template: %s: exceeded maximum template "
		                    "depth (%u)",
		                    name, s->set->limits.call_depth);
	}
	te_buf_init(&s->out, s->set->limits.output_max);
	s->err = err;
	rc = push_var(s, "$", xv_copy(&d));
	if (rc == 0) {
		s->base = mark;
		s->calls++;
		rc = walk(s, &d, s->tmpl->root);
		s->calls--;
	}
	pop_vars(s, mark);
	if (rc == 0) {
		*out_len = s->out.len;
		*out = te_buf_detach(&s->out);
		if (!*out)
			rc = te_error_set(err, TE_ENOMEM, "out of memory");
	}
	te_buf_dispose(&s->out);
	s->out = saved_out;
	s->err = saved_err;
	s->base = saved_base;
	s->tmpl = saved_tmpl;
	s->node = saved_node;
	return rc < 0 ? rc : 0;
}

int te_render_exec(char **out, size_t *out_len, te_render_set *set,
                   const char *name, te_render_value *data, te_error *err)
{
	struct te_exec s;
	struct te_xv dot = {data, false};
	int rc;

	*out = NULL;
	*out_len = 0;
	memset(&s, 0, sizeof(s));
	s.set = set;
	s.err = err;
	te_buf_init(&s.out, set->limits.output_max);
	s.tmpl = te_render__lookup(set, name);
	if (!s.tmpl)
		return te_error_set(err, TE_ENOTFOUND,
		                    "template: no template \"%s\" associated "
		                    "with template \"%s\"",
		                    name,
		                    set->ntrees ? set->trees[0]->name : name);
	if (data && data->kind == TE_RENDER_NIL)
		dot.v = NULL; /* Go's reflect.ValueOf(nil) */
	te_render_value_ref(dot.v);
	rc = push_var(&s, "$", dot);
	if (rc == 0)
		rc = walk(&s, &dot, s.tmpl->root);
	pop_vars(&s, 0);
	free(s.vars);
	if (rc < 0) {
		te_buf_dispose(&s.out);
		return rc;
	}
	*out_len = s.out.len;
	*out = te_buf_detach(&s.out);
	if (!*out)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	return 0;
}

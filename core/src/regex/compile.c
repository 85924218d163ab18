/*
 * compile.c - the tree, simplified as Go's Regexp.Simplify does, into a
 * Pike VM program laid out as Go's regexp/syntax compiler lays it out
 * (https://swtch.com/~rsc/regexp/regexp2.html): the order of the two
 * branches of each ALT is the threads' priority, which decides both
 * leftmost-first matches and their submatches, so the shapes follow Go's
 * (a nullable x* is (x+)?, golang.org/issue/46123).
 */
#include <stdlib.h>
#include <string.h>

#include "regex/regex_int.h"

/* Go's simplify1: op of sub, folding x** and ()*. */
static struct te_re_node *simplify1(struct te_re_nodes *ns, enum re_op op,
                                    bool nongreedy, struct te_re_node *sub,
                                    struct te_re_node *re)
{
	struct te_re_node *n;

	if (sub->op == RE_EMPTY)
		return sub;
	if (op == sub->op && nongreedy == sub->nongreedy)
		return sub;
	if (re && re->op == op && re->nongreedy == nongreedy) {
		re->sub[0] = sub;
		return re;
	}
	n = te_re__node_new(ns, op);
	if (!n || te_re__node_push(n, sub) < 0)
		return NULL;
	n->nongreedy = nongreedy;
	return n;
}

static struct te_re_node *concat_of(struct te_re_nodes *ns,
                                    struct te_re_node *x, int count)
{
	struct te_re_node *n = te_re__node_new(ns, RE_CONCAT);
	int i;

	for (i = 0; n && i < count; i++)
		if (te_re__node_push(n, x) < 0)
			return NULL;
	return n;
}

/* x{min,max} as Go spells it: x{2,5} = xx(x(x(x)?)?)? */
static struct te_re_node *simplify_repeat(struct te_re_nodes *ns,
                                          struct te_re_node *re)
{
	struct te_re_node *sub, *prefix = NULL, *suffix, *pair;
	bool ng = re->nongreedy;
	int i;

	if (re->min == 0 && re->max == 0)
		return te_re__node_new(ns, RE_EMPTY);
	sub = te_re__simplify(ns, re->sub[0]);
	if (!sub)
		return NULL;
	if (re->max == -1) {
		if (re->min == 0)
			return simplify1(ns, RE_STAR, ng, sub, NULL);
		if (re->min == 1)
			return simplify1(ns, RE_PLUS, ng, sub, NULL);
		prefix = concat_of(ns, sub, re->min - 1);
		suffix = simplify1(ns, RE_PLUS, ng, sub, NULL);
		if (!prefix || !suffix || te_re__node_push(prefix, suffix) < 0)
			return NULL;
		return prefix;
	}
	if (re->min == 1 && re->max == 1)
		return sub;
	if (re->min > 0) {
		prefix = concat_of(ns, sub, re->min);
		if (!prefix)
			return NULL;
	}
	if (re->max > re->min) {
		suffix = simplify1(ns, RE_QUEST, ng, sub, NULL);
		for (i = re->min + 1; suffix && i < re->max; i++) {
			pair = concat_of(ns, sub, 1);
			if (!pair || te_re__node_push(pair, suffix) < 0)
				return NULL;
			suffix = simplify1(ns, RE_QUEST, ng, pair, NULL);
		}
		if (!suffix)
			return NULL;
		if (!prefix)
			return suffix;
		if (te_re__node_push(prefix, suffix) < 0)
			return NULL;
	}
	return prefix ? prefix : te_re__node_new(ns, RE_NOMATCH);
}

struct te_re_node *te_re__simplify(struct te_re_nodes *ns, struct te_re_node *n)
{
	struct te_re_node *sub;
	size_t i;

	switch (n->op) {
	case RE_CAPTURE:
	case RE_CONCAT:
	case RE_ALT:
		for (i = 0; i < n->nsub; i++) {
			sub = te_re__simplify(ns, n->sub[i]);
			if (!sub)
				return NULL;
			n->sub[i] = sub;
		}
		return n;
	case RE_STAR:
	case RE_PLUS:
	case RE_QUEST:
		sub = te_re__simplify(ns, n->sub[0]);
		if (!sub)
			return NULL;
		return simplify1(ns, n->op, n->nongreedy, sub, n);
	case RE_REPEAT:
		return simplify_repeat(ns, n);
	default:
		return n;
	}
}

/* Dangling exits of a fragment: a list threaded through the out (even)
 * and arg (odd) fields of its instructions, 0 ending it (instruction 0
 * is FAIL, never an exit). */
struct plist {
	uint32_t head, tail;
};

struct frag {
	uint32_t i; /* first instruction; 0: matches nothing */
	struct plist out;
	bool nullable;
};

struct compiler {
	struct te_regex *re;
	size_t cap;
	bool too_large;
	bool oom;
};

static uint32_t *slot(struct compiler *c, uint32_t p)
{
	struct te_re_inst *in = &c->re->inst[p >> 1];

	return p & 1 ? &in->arg : &in->out;
}

static void patch(struct compiler *c, struct plist l, uint32_t to)
{
	uint32_t p = l.head, next;

	while (p) {
		next = *slot(c, p);
		*slot(c, p) = to;
		p = next;
	}
}

static struct plist append(struct compiler *c, struct plist a, struct plist b)
{
	if (!a.head)
		return b;
	if (!b.head)
		return a;
	*slot(c, a.tail) = b.head;
	a.tail = b.tail;
	return a;
}

static struct frag inst(struct compiler *c, enum re_iop op)
{
	struct frag f = {0, {0, 0}, true};
	struct te_re_inst *v;
	size_t cap;

	if (c->too_large || c->oom)
		return f;
	if (c->re->ninst >= TE_REGEX_PROG_MAX) {
		c->too_large = true;
		return f;
	}
	if (c->re->ninst == c->cap) {
		cap = c->cap ? c->cap * 2 : 64;
		v = realloc(c->re->inst, cap * sizeof(*v));
		if (!v) {
			c->oom = true;
			return f;
		}
		c->re->inst = v;
		c->cap = cap;
	}
	f.i = (uint32_t)c->re->ninst++;
	memset(&c->re->inst[f.i], 0, sizeof(c->re->inst[f.i]));
	c->re->inst[f.i].op = (uint8_t)op;
	return f;
}

/* An instruction with one exit (its out). */
static struct frag inst1(struct compiler *c, enum re_iop op, uint32_t arg)
{
	struct frag f = inst(c, op);

	if (f.i) {
		c->re->inst[f.i].arg = arg;
		f.out.head = f.out.tail = f.i << 1;
	}
	return f;
}

static struct frag cat(struct compiler *c, struct frag a, struct frag b)
{
	struct frag f = {0, {0, 0}, false};

	if (!a.i || !b.i)
		return f;
	patch(c, a.out, b.i);
	f.i = a.i;
	f.out = b.out;
	f.nullable = a.nullable && b.nullable;
	return f;
}

static struct frag alt(struct compiler *c, struct frag a, struct frag b)
{
	struct frag f;

	if (!a.i)
		return b;
	if (!b.i)
		return a;
	f = inst(c, I_ALT);
	if (!f.i)
		return f;
	c->re->inst[f.i].out = a.i;
	c->re->inst[f.i].arg = b.i;
	f.out = append(c, a.out, b.out);
	f.nullable = a.nullable || b.nullable;
	return f;
}

/* x? and the loop of x+: an ALT preferring x unless nongreedy.  For the
 * loop (loop true) x's exits go back to the ALT. */
static struct frag quest_or_loop(struct compiler *c, struct frag x,
                                 bool nongreedy, bool loop)
{
	struct frag f = inst(c, I_ALT);
	struct plist l;

	if (!f.i)
		return f;
	if (nongreedy) {
		c->re->inst[f.i].arg = x.i;
		l.head = l.tail = f.i << 1;
	} else {
		c->re->inst[f.i].out = x.i;
		l.head = l.tail = f.i << 1 | 1;
	}
	if (loop) {
		patch(c, x.out, f.i);
		f.out = l;
	} else {
		f.out = append(c, l, x.out);
	}
	return f;
}

static struct frag plus(struct compiler *c, struct frag x, bool nongreedy)
{
	struct frag l = quest_or_loop(c, x, nongreedy, true);

	x.out = l.out;
	return l.i ? x : l;
}

static struct frag rune(struct compiler *c, struct te_re_node *n)
{
	struct frag f = inst1(c, I_RUNE, 0);
	struct te_regex *re = c->re;
	uint32_t *v;

	f.nullable = false;
	if (!f.i)
		return f;
	if (!n->pooled) {
		v = realloc(re->pool,
		            (re->npool + 2 * n->cls.n + 1) * sizeof(*v));
		if (!v) {
			c->oom = true;
			f.i = 0;
			return f;
		}
		re->pool = v;
		if (n->cls.n)
			memcpy(v + re->npool, n->cls.r,
			       2 * n->cls.n * sizeof(*v));
		n->pool_off = (uint32_t)re->npool;
		n->pooled = true;
		re->npool += 2 * n->cls.n;
	}
	re->inst[f.i].arg = n->pool_off;
	re->inst[f.i].n = (uint32_t)n->cls.n;
	re->nrune++;
	return f;
}

static struct frag comp(struct compiler *c, struct te_re_node *n)
{
	struct frag f = {0, {0, 0}, false}, x;
	size_t i;

	switch (n->op) {
	case RE_NOMATCH:
		return f;
	case RE_EMPTY:
		return inst1(c, I_NOP, 0);
	case RE_CLASS:
		return rune(c, n);
	case RE_ASSERT:
		return inst1(c, I_EMPTY, n->arg);
	case RE_CAPTURE:
		f = inst1(c, I_CAP, n->arg * 2);
		f = cat(c, f, comp(c, n->sub[0]));
		return cat(c, f, inst1(c, I_CAP, n->arg * 2 + 1));
	case RE_STAR:
		x = comp(c, n->sub[0]);
		if (x.nullable)
			return quest_or_loop(c, plus(c, x, n->nongreedy),
			                     n->nongreedy, false);
		return quest_or_loop(c, x, n->nongreedy, true);
	case RE_PLUS:
		return plus(c, comp(c, n->sub[0]), n->nongreedy);
	case RE_QUEST:
		return quest_or_loop(c, comp(c, n->sub[0]), n->nongreedy,
		                     false);
	case RE_CONCAT:
		if (n->nsub == 0)
			return inst1(c, I_NOP, 0);
		f = comp(c, n->sub[0]);
		for (i = 1; i < n->nsub; i++)
			f = cat(c, f, comp(c, n->sub[i]));
		return f;
	case RE_ALT:
		for (i = 0; i < n->nsub; i++)
			f = alt(c, f, comp(c, n->sub[i]));
		return f;
	case RE_REPEAT:
		break;
	}
	return f;
}

/* Go's Prog.StartCond: the zero-width conditions before the first rune;
 * ~0u when the program can never match. */
static unsigned start_cond(const struct te_regex *re)
{
	unsigned flag = 0;
	uint32_t pc = re->start;

	for (;;) {
		const struct te_re_inst *in = &re->inst[pc];

		switch (in->op) {
		case I_EMPTY:
			flag |= in->arg;
			break;
		case I_FAIL:
			return ~0u;
		case I_CAP:
		case I_NOP:
			break;
		default:
			return flag;
		}
		pc = in->out;
	}
}

int te_re__compile(struct te_regex *re, struct te_re_node *root,
                   const char *pat, size_t len, te_error *err)
{
	struct compiler c = {re, 0, false, false};
	struct frag f, m;

	inst(&c, I_FAIL);
	f = comp(&c, root);
	m = inst(&c, I_MATCH);
	patch(&c, f.out, m.i);
	re->start = f.i;
	if (c.oom)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	if (c.too_large || re->nrune * (2 * re->ngroups) > RE_CAPMEM_MAX)
		return te_error_set(err, TE_EINVALID,
		                    "error parsing regexp: expression too "
		                    "large: `%.*s`",
		                    (int)len, pat);
	re->nrune++; /* MATCH holds a thread too */
	re->start_cond = start_cond(re);
	return 0;
}

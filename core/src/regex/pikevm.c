/*
 * pikevm.c - the Pike VM (https://swtch.com/~rsc/regexp/regexp2.html):
 * all threads advance in lockstep over the text, one thread per
 * instruction per position in priority order, so time is O(text x
 * program) whatever the pattern; the submatch rules are Go's
 * (regexp/exec.go): the first thread to reach MATCH wins and cuts the
 * lower-priority ones, or, leftmost-longest, the longest of the earliest.
 */
#include <stdlib.h>
#include <string.h>

#include "regex/regex_int.h"
#include "utf8_int.h"

struct entry {
	uint32_t pc;
	int32_t slot; /* capture slot of a RUNE/MATCH thread, else -1 */
};

struct queue {
	uint32_t *sparse;
	struct entry *dense;
	size_t n;
};

/* add()'s explicit stack: a pc to follow, or a capture to restore */
struct frame {
	uint32_t pc;
	int32_t restore; /* capture index to restore, -1: follow pc */
	ptrdiff_t old;
};

struct vm {
	const struct te_regex *re;
	const unsigned char *text;
	size_t len;
	size_t ncap2;
	bool longest;
	ptrdiff_t *slots; /* nslots x ncap2 offsets */
	size_t nslots, slots_cap;
	int32_t *free;
	size_t nfree;
	struct queue q[2];
	struct frame *stack;
	ptrdiff_t *scratch; /* a new thread's offsets */
	ptrdiff_t *tcap;    /* an advancing thread's offsets */
	ptrdiff_t *matchcap;
	bool matched;
	uint64_t work;
	bool oom;
};

static bool is_word(int32_t r)
{
	return (r >= '0' && r <= '9') || (r >= 'A' && r <= 'Z') ||
	       (r >= 'a' && r <= 'z') || r == '_';
}

/* Go's syntax.EmptyOpContext between runes r1 and r2 (-1: text edge). */
static unsigned context(int32_t r1, int32_t r2)
{
	unsigned op = RE_NWORDB;
	int boundary = 0;

	if (is_word(r1))
		boundary = 1;
	else if (r1 == '\n')
		op |= RE_BOL;
	else if (r1 < 0)
		op |= RE_BOT | RE_BOL;
	if (is_word(r2))
		boundary ^= 1;
	else if (r2 == '\n')
		op |= RE_EOL;
	else if (r2 < 0)
		op |= RE_EOT | RE_EOL;
	if (boundary)
		op ^= RE_WORDB | RE_NWORDB;
	return op;
}

/* The rune at pos and its width; -1 and 0 at the end. */
static int32_t rune_at(const struct vm *m, size_t pos, size_t *w)
{
	uint32_t r;

	if (pos >= m->len) {
		*w = 0;
		return -1;
	}
	*w = te__utf8_next(m->text + pos, m->len - pos, &r);
	return (int32_t)r;
}

/* Only ASCII word characters and '\n' matter to the conditions, and an
 * ASCII byte is always a whole rune: the byte before pos tells enough. */
static int32_t rune_before(const struct vm *m, size_t pos)
{
	unsigned char b = m->text[pos - 1];

	return b < 0x80 ? b : TE_UTF8_INVALID;
}

static bool rune_match(const struct te_regex *re, const struct te_re_inst *in,
                       int32_t c)
{
	const uint32_t *r = re->pool + in->arg;
	uint32_t i, u = (uint32_t)c;

	if (c < 0)
		return false;
	if (in->n <= 4) {
		for (i = 0; i < in->n; i++)
			if (u >= r[2 * i] && u <= r[2 * i + 1])
				return true;
		return false;
	}
	return te_re__class_has(r, in->n, u);
}

static ptrdiff_t *slot_caps(struct vm *m, int32_t s)
{
	return m->slots + (size_t)s * m->ncap2;
}

static int32_t slot_new(struct vm *m)
{
	ptrdiff_t *v;
	size_t cap;

	if (m->nfree)
		return m->free[--m->nfree];
	if (m->nslots == m->slots_cap) {
		cap = m->slots_cap ? m->slots_cap * 2 : 16;
		v = realloc(m->slots,
		            cap * (m->ncap2 ? m->ncap2 : 1) * sizeof(*v));
		if (!v) {
			m->oom = true;
			return -1;
		}
		m->slots = v;
		m->slots_cap = cap;
	}
	return (int32_t)m->nslots++;
}

static void slot_free(struct vm *m, int32_t s)
{
	if (s >= 0)
		m->free[m->nfree++] = s;
}

/* Go's machine.add: follow pc0's empty transitions in priority order,
 * queueing each instruction once; cap is modified and restored. */
static void add(struct vm *m, struct queue *q, uint32_t pc0, size_t pos,
                ptrdiff_t *cap, unsigned cond)
{
	const struct te_regex *re = m->re;
	size_t sp = 0;
	uint32_t pc;
	int32_t s;

	m->stack[sp].pc = pc0;
	m->stack[sp++].restore = -1;
	while (sp) {
		struct frame f = m->stack[--sp];

		if (f.restore >= 0) {
			cap[f.restore] = f.old;
			continue;
		}
		pc = f.pc;
		for (;;) {
			const struct te_re_inst *in = &re->inst[pc];
			uint32_t j = q->sparse[pc];

			if (pc == 0 || (j < q->n && q->dense[j].pc == pc))
				break;
			m->work++;
			q->sparse[pc] = (uint32_t)q->n;
			q->dense[q->n].pc = pc;
			q->dense[q->n++].slot = -1;
			if (in->op == I_ALT) {
				m->stack[sp].pc = in->arg;
				m->stack[sp++].restore = -1;
				pc = in->out;
			} else if (in->op == I_EMPTY) {
				if (in->arg & ~cond)
					break;
				pc = in->out;
			} else if (in->op == I_NOP) {
				pc = in->out;
			} else if (in->op == I_CAP) {
				if (in->arg < m->ncap2) {
					m->stack[sp].restore = (int32_t)in->arg;
					m->stack[sp++].old = cap[in->arg];
					cap[in->arg] = (ptrdiff_t)pos;
				}
				pc = in->out;
			} else {
				s = slot_new(m);
				if (s < 0)
					return;
				if (m->ncap2)
					memcpy(slot_caps(m, s), cap,
					       m->ncap2 * sizeof(*cap));
				q->dense[q->n - 1].slot = s;
				break;
			}
		}
	}
}

static void clear(struct vm *m, struct queue *q, size_t from)
{
	size_t i;

	for (i = from; i < q->n; i++)
		slot_free(m, q->dense[i].slot);
	q->n = 0;
}

/* Go's machine.step: run runq's threads on rune c at pos into nextq. */
static void step(struct vm *m, struct queue *runq, struct queue *nextq,
                 size_t pos, size_t next_pos, int32_t c, unsigned next_cond)
{
	const struct te_regex *re = m->re;
	size_t j;

	for (j = 0; j < runq->n; j++) {
		struct entry *d = &runq->dense[j];
		const struct te_re_inst *in = &re->inst[d->pc];
		ptrdiff_t *tc;

		if (d->slot < 0)
			continue;
		m->work++;
		tc = slot_caps(m, d->slot);
		if (m->longest && m->matched && m->ncap2 &&
		    m->matchcap[0] < tc[0]) {
			slot_free(m, d->slot);
			continue;
		}
		if (in->op == I_MATCH) {
			if (m->ncap2 && (!m->longest || !m->matched ||
			                 m->matchcap[1] < (ptrdiff_t)pos)) {
				tc[1] = (ptrdiff_t)pos;
				memcpy(m->matchcap, tc, m->ncap2 * sizeof(*tc));
			}
			m->matched = true;
			if (!m->longest) {
				/* leftmost-first: lower priorities lose */
				slot_free(m, d->slot);
				clear(m, runq, j + 1);
				return;
			}
		} else if (rune_match(re, in, c)) {
			/* add() may grow (move) the slots: work on a copy */
			memcpy(m->tcap, tc, m->ncap2 * sizeof(*tc));
			slot_free(m, d->slot);
			add(m, nextq, in->out, next_pos, m->tcap, next_cond);
			continue;
		}
		slot_free(m, d->slot);
	}
	runq->n = 0;
}

static int vm_init(struct vm *m, const struct te_regex *re, size_t ncap2)
{
	size_t n = re->ninst;

	m->ncap2 = ncap2;
	m->q[0].sparse = calloc(n, sizeof(uint32_t));
	m->q[1].sparse = calloc(n, sizeof(uint32_t));
	m->q[0].dense = malloc(n * sizeof(struct entry));
	m->q[1].dense = malloc(n * sizeof(struct entry));
	m->stack = malloc((2 * n + 1) * sizeof(struct frame));
	m->free = malloc(2 * (re->nrune + 1) * sizeof(int32_t));
	m->scratch = malloc((ncap2 + 1) * sizeof(ptrdiff_t));
	m->tcap = malloc((ncap2 + 1) * sizeof(ptrdiff_t));
	m->matchcap = malloc((ncap2 + 1) * sizeof(ptrdiff_t));
	if (!m->q[0].sparse || !m->q[1].sparse || !m->q[0].dense ||
	    !m->q[1].dense || !m->stack || !m->free || !m->scratch ||
	    !m->tcap || !m->matchcap)
		return TE_ENOMEM;
	return 0;
}

static void vm_dispose(struct vm *m)
{
	free(m->q[0].sparse);
	free(m->q[1].sparse);
	free(m->q[0].dense);
	free(m->q[1].dense);
	free(m->stack);
	free(m->free);
	free(m->scratch);
	free(m->tcap);
	free(m->matchcap);
	free(m->slots);
}

/* Charge the work done so far to the budget; false when it ran out. */
static bool charge(struct vm *m, uint64_t *steps)
{
	if (!steps)
		return true;
	if (m->work > *steps) {
		*steps = 0;
		return false;
	}
	*steps -= m->work;
	m->work = 0;
	return true;
}

/* Go's machine.match from pos. */
static int run(struct vm *m, size_t pos, uint64_t *steps, te_error *err)
{
	const struct te_regex *re = m->re;
	struct queue *runq = &m->q[0], *nextq = &m->q[1], *tq;
	size_t w, w1 = 0, i;
	int32_t r, r1 = -1;
	unsigned flag, sc = re->start_cond;

	if (sc == ~0u)
		return 0;
	for (i = 0; i < m->ncap2; i++)
		m->matchcap[i] = -1;
	r = rune_at(m, pos, &w);
	if (r >= 0)
		r1 = rune_at(m, pos + w, &w1);
	flag = context(pos == 0 ? -1 : rune_before(m, pos), r);
	for (;;) {
		if (runq->n == 0 && ((sc & RE_BOT && pos != 0) || m->matched))
			break;
		if (!m->matched && (pos == 0 || !(sc & RE_BOT))) {
			for (i = 0; i < m->ncap2; i++)
				m->scratch[i] = -1;
			if (m->ncap2)
				m->scratch[0] = (ptrdiff_t)pos;
			add(m, runq, re->start, pos, m->scratch, flag);
		}
		flag = context(r, r1);
		step(m, runq, nextq, pos, pos + w, r, flag);
		if (m->oom)
			return te_error_set(err, TE_ENOMEM, "out of memory");
		if (!charge(m, steps))
			return te_error_set(err, TE_EINVALID,
			                    "regexp: work budget exceeded");
		if (w == 0 || (m->ncap2 == 0 && m->matched))
			break;
		pos += w;
		r = r1;
		w = w1;
		if (r >= 0)
			r1 = rune_at(m, pos + w, &w1);
		tq = runq;
		runq = nextq;
		nextq = tq;
	}
	return m->matched ? 1 : 0;
}

int te_re__vm_new(struct te_re_vm **out, const struct te_regex *re,
                  size_t ncaps, te_error *err)
{
	struct vm *m = calloc(1, sizeof(*m));

	*out = NULL;
	if (!m)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	m->re = re;
	m->longest = (re->flags & TE_REGEX_LONGEST) != 0;
	if (ncaps > re->ngroups)
		ncaps = re->ngroups;
	if (vm_init(m, re, 2 * ncaps) < 0) {
		vm_dispose(m);
		free(m);
		return te_error_set(err, TE_ENOMEM, "out of memory");
	}
	*out = (struct te_re_vm *)m;
	return 0;
}

void te_re__vm_free(struct te_re_vm *vm)
{
	if (!vm)
		return;
	vm_dispose((struct vm *)vm);
	free(vm);
}

int te_re__vm_exec(ptrdiff_t *caps, struct te_re_vm *vm, const char *text,
                   size_t len, size_t pos, uint64_t *steps, te_error *err)
{
	struct vm *m = (struct vm *)vm;
	int rc;

	if (pos > len)
		return 0;
	/* a run leaves no thread behind: nothing of the last one to free */
	m->text = (const unsigned char *)text;
	m->len = len;
	m->q[0].n = m->q[1].n = 0;
	m->nslots = m->nfree = 0;
	m->matched = false;
	m->work = 0;
	rc = run(m, pos, steps, err);
	if (rc == 1 && m->ncap2)
		memcpy(caps, m->matchcap, m->ncap2 * sizeof(*caps));
	return rc;
}

int te_re__exec(ptrdiff_t *caps, size_t ncaps, const struct te_regex *re,
                const char *text, size_t len, size_t pos, uint64_t *steps,
                te_error *err)
{
	struct te_re_vm *vm = NULL;
	int rc;

	rc = te_re__vm_new(&vm, re, ncaps, err);
	if (rc == 0)
		rc = te_re__vm_exec(caps, vm, text, len, pos, steps, err);
	te_re__vm_free(vm);
	return rc;
}

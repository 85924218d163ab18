/*
 * regex_int.h - the regex module's parts: syntax tree (parse.c), classes
 * and Unicode tables (class.c, tables.c), program (compile.c), Pike VM
 * (pikevm.c).  The structure follows Go's regexp/syntax so that thread
 * priorities, and so submatches, come out as Go's.
 */
#ifndef TE_REGEX_INT_H
#define TE_REGEX_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tagexport/regex.h"
#include "unicode/unicode.h"

#define RE_MAX_RUNE 0x10FFFFu
#define RE_REPEAT_MAX 1000
#define RE_HEIGHT_MAX 1000
/* rune ranges all classes of a pattern may hold (2 MiB) */
#define RE_PAIRS_MAX (256u * 1024)
/* thread slots x groups the VM may hold (32 MiB of offsets) */
#define RE_CAPMEM_MAX (1u << 22)

/* A set of runes: n sorted, disjoint, non-adjacent [lo, hi] pairs. */
struct te_re_class {
	uint32_t *r;
	size_t n, cap;
};

int te_re__class_add(struct te_re_class *c, uint32_t lo, uint32_t hi);
int te_re__class_add_pairs(struct te_re_class *c, const uint32_t *r, size_t n);
/* sort and merge after adds */
void te_re__class_clean(struct te_re_class *c);
int te_re__class_negate(struct te_re_class *c);
/* add every rune's simple-folding orbit; c must be clean */
int te_re__class_fold(struct te_re_class *c);
bool te_re__class_has(const uint32_t *r, size_t n, uint32_t x);
void te_re__class_free(struct te_re_class *c);
uint32_t te_re__simple_fold(uint32_t r);

/* Zero-width conditions (Go's syntax.EmptyOp). */
enum {
	RE_BOL = 1,
	RE_EOL = 2,
	RE_BOT = 4,
	RE_EOT = 8,
	RE_WORDB = 16,
	RE_NWORDB = 32
};

enum re_op {
	RE_NOMATCH,
	RE_EMPTY,
	RE_CLASS,  /* one rune of cls */
	RE_ASSERT, /* zero-width: arg = RE_BOL... */
	RE_CAPTURE,
	RE_STAR,
	RE_PLUS,
	RE_QUEST,
	RE_REPEAT,
	RE_CONCAT,
	RE_ALT
};

struct te_re_node {
	enum re_op op;
	bool nongreedy;
	int min, max; /* RE_REPEAT; max -1: no upper bound */
	unsigned arg; /* RE_ASSERT conditions, RE_CAPTURE group */
	struct te_re_class cls;
	struct te_re_node **sub;
	size_t nsub, subcap;
	uint32_t pool_off; /* compile: cls's place in the range pool */
	bool pooled;
};

/* All nodes of one parse, freed together. */
struct te_re_nodes {
	struct te_re_node **v;
	size_t n, cap;
};

struct te_re_node *te_re__node_new(struct te_re_nodes *ns, enum re_op op);
int te_re__node_push(struct te_re_node *n, struct te_re_node *sub);
void te_re__nodes_free(struct te_re_nodes *ns);

/* Parse result: the tree, group count (group 0 included) and names. */
struct te_re_ast {
	struct te_re_nodes nodes;
	struct te_re_node *root;
	size_t ngroups;
	char **names; /* names_cap entries, NULL for unnamed */
	size_t names_cap;
};

int te_re__parse(struct te_re_ast *ast, const char *pat, size_t len,
                 te_error *err);
void te_re__ast_dispose(struct te_re_ast *ast);
/* Go's Regexp.Simplify: counted repetition expanded, x** folded. */
struct te_re_node *te_re__simplify(struct te_re_nodes *ns,
                                   struct te_re_node *n);

enum re_iop { I_FAIL, I_MATCH, I_RUNE, I_ALT, I_NOP, I_CAP, I_EMPTY };

struct te_re_inst {
	uint8_t op;
	uint32_t out;
	uint32_t arg; /* ALT: second branch; CAP: slot; EMPTY: conditions;
	                 RUNE: offset of the pairs in the pool */
	uint32_t n;   /* RUNE: pairs */
};

struct te_regex {
	struct te_re_inst *inst;
	size_t ninst;
	uint32_t start;
	uint32_t *pool; /* rune pairs of RUNE instructions */
	size_t npool;
	size_t ngroups;
	char **names; /* names_cap entries, NULL for unnamed */
	size_t names_cap;
	size_t expr_len; /* the pattern's length (Go's Split asks) */
	unsigned flags;
	unsigned start_cond; /* zero-width conditions every match needs
	                        before its first rune (Go's StartCond) */
	size_t nrune;        /* RUNE and MATCH instructions */
};

/* root's program into re; TE_EINVALID "expression too large" names pat */
int te_re__compile(struct te_regex *re, struct te_re_node *root,
                   const char *pat, size_t len, te_error *err);
/* A Pike VM's memory for one program, reused across searches (FindAll
 * must not pay the program's size per match). */
struct te_re_vm;
int te_re__vm_new(struct te_re_vm **out, const struct te_regex *re,
                  size_t ncaps, te_error *err);
void te_re__vm_free(struct te_re_vm *vm);
/* one search from pos: 1 found (caps filled, ncaps groups), 0, or < 0 */
int te_re__vm_exec(ptrdiff_t *caps, struct te_re_vm *vm, const char *text,
                   size_t len, size_t pos, uint64_t *steps, te_error *err);
/* Go's Regexp.doExecute with the Pike VM (pikevm.c) */
int te_re__exec(ptrdiff_t *caps, size_t ncaps, const struct te_regex *re,
                const char *text, size_t len, size_t pos, uint64_t *steps,
                te_error *err);

#endif

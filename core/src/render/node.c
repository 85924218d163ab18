/*
 * node.c - Node.String() of Go's text/template/parse (node.go): the text
 * of a parse-tree node as Go prints it, used in error messages
 * ("executing ... at <NODE>") and in "unexpected {{end}}".
 */
#include "render/render_int.h"

static int branch_string(te_buf *b, const struct te_node *n, const char *kw,
                         te_error *err)
{
	te_buf_printf(b, err, "{{%s ", kw);
	te_render__node_string(b, n->pipe, err);
	te_buf_puts(b, "}}", err);
	te_render__node_string(b, n->list, err);
	if (n->else_list) {
		te_buf_puts(b, "{{else}}", err);
		te_render__node_string(b, n->else_list, err);
	}
	return te_buf_puts(b, "{{end}}", err);
}

static int idents_string(te_buf *b, const struct te_node *n, bool lead,
                         te_error *err)
{
	size_t i;

	for (i = 0; i < n->nidents; i++) {
		if (lead || i > 0)
			te_buf_puts(b, ".", err);
		te_buf_puts(b, n->idents[i], err);
	}
	return err->code;
}

static int pipe_string(te_buf *b, const struct te_node *n, te_error *err)
{
	size_t i;

	for (i = 0; i < n->ndecl; i++) {
		if (i > 0)
			te_buf_puts(b, ", ", err);
		te_render__node_string(b, n->decl[i], err);
	}
	if (n->ndecl)
		te_buf_puts(b, " := ", err);
	for (i = 0; i < n->nkids; i++) {
		if (i > 0)
			te_buf_puts(b, " | ", err);
		te_render__node_string(b, n->kids[i], err);
	}
	return err->code;
}

int te_render__node_string(te_buf *b, const struct te_node *n, te_error *err)
{
	size_t i;

	if (!n)
		return 0;
	switch (n->type) {
	case N_TEXT:
	case N_IDENT:
	case N_NUMBER:
		return te_buf_put(b, n->text, n->text_len, err);
	case N_STRING:
		return te_buf_put(b, n->quoted, n->quoted_len, err);
	case N_COMMENT:
		return te_buf_printf(b, err, "{{%s}}", n->text ? n->text : "");
	case N_ACTION:
		te_buf_puts(b, "{{", err);
		pipe_string(b, n->pipe, err);
		return te_buf_puts(b, "}}", err);
	case N_BOOL:
		return te_buf_puts(b, n->truth ? "true" : "false", err);
	case N_DOT:
		return te_buf_puts(b, ".", err);
	case N_NIL:
		return te_buf_puts(b, "nil", err);
	case N_FIELD:
		return idents_string(b, n, true, err);
	case N_VARIABLE:
		return idents_string(b, n, false, err);
	case N_CHAIN:
		if (n->pipe->type == N_PIPE) {
			te_buf_puts(b, "(", err);
			te_render__node_string(b, n->pipe, err);
			te_buf_puts(b, ")", err);
		} else {
			te_render__node_string(b, n->pipe, err);
		}
		return idents_string(b, n, true, err);
	case N_COMMAND:
		for (i = 0; i < n->nkids; i++) {
			if (i > 0)
				te_buf_puts(b, " ", err);
			if (n->kids[i]->type == N_PIPE) {
				te_buf_puts(b, "(", err);
				te_render__node_string(b, n->kids[i], err);
				te_buf_puts(b, ")", err);
			} else {
				te_render__node_string(b, n->kids[i], err);
			}
		}
		return err->code;
	case N_PIPE:
		return pipe_string(b, n, err);
	case N_LIST:
		for (i = 0; i < n->nkids; i++)
			te_render__node_string(b, n->kids[i], err);
		return err->code;
	case N_IF:
		return branch_string(b, n, "if", err);
	case N_RANGE:
		return branch_string(b, n, "range", err);
	case N_WITH:
		return branch_string(b, n, "with", err);
	case N_TEMPLATE:
		te_buf_puts(b, "{{template ", err);
		te_render__quote(b, n->text, n->text_len, false, err);
		if (n->pipe) {
			te_buf_puts(b, " ", err);
			te_render__node_string(b, n->pipe, err);
		}
		return te_buf_puts(b, "}}", err);
	case N_BREAK:
		return te_buf_puts(b, "{{break}}", err);
	case N_CONTINUE:
		return te_buf_puts(b, "{{continue}}", err);
	case N_END:
		return te_buf_puts(b, "{{end}}", err);
	case N_ELSE:
		return te_buf_puts(b, "{{else}}", err);
	}
	return 0;
}

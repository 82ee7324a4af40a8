// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Tokens of the dae config language. The input is a byte span, not a C
 * string: every read is checked against `len`.
 *
 * Bare words are generous (addresses, CIDRs, port ranges and unquoted
 * links are single words), so ':' needs care: it belongs to a word when
 * more word follows ("fd00::/8", "socks5://h:1") and is a separator when
 * whitespace or punctuation follows ("log_level: info"). A word such as
 * "fallback:direct" is split by the parser where a key is expected.
 */
#include <stdlib.h>
#include <string.h>

#include "config-private.h"

static bool is_word_byte(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c >= 0x80 || (c && strchr("_-./:@%+~=?*", c));
}

static int at(const struct cfg_lexer *lx, size_t off)
{
	return off < lx->len ? (unsigned char)lx->src[off] : -1;
}

static struct cfg_pos here(const struct cfg_lexer *lx)
{
	return (struct cfg_pos){ lx->line, (unsigned)(lx->off - lx->line_start + 1), lx->file };
}

static void newline(struct cfg_lexer *lx)
{
	lx->off++;
	lx->line++;
	lx->line_start = lx->off;
	lx->at_bol = true;
}

/* Skips blanks and comments; false at end of input. */
static void skip_space(struct cfg_lexer *lx)
{
	while (lx->off < lx->len) {
		int c = at(lx, lx->off);
		if (c == '\n') {
			newline(lx);
		} else if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
			lx->off++;
		} else if (c == '#') {
			while (lx->off < lx->len && lx->src[lx->off] != '\n')
				lx->off++;
		} else if (c == '/' && at(lx, lx->off + 1) == '*') {
			struct cfg_pos start = here(lx);
			lx->off += 2;
			for (;;) {
				if (lx->off >= lx->len) {
					cfg_diag(lx->sink, false, start,
						 "unterminated comment '/*' (close it with '*/')");
					return;
				}
				if (lx->src[lx->off] == '*' && at(lx, lx->off + 1) == '/') {
					lx->off += 2;
					break;
				}
				if (lx->src[lx->off] == '\n')
					newline(lx);
				else
					lx->off++;
			}
		} else {
			return;
		}
	}
}

/* `inside`: off is past the word's first byte. A glob's slash-star
 * inside a word (include { config.d/STAR.dae }) is part of it, as in dae;
 * a comment needs a blank or punctuation before it. */
static bool word_byte_ok(const struct cfg_lexer *lx, size_t off, bool inside)
{
	int c = at(lx, off);

	if (c < 0 || !is_word_byte((unsigned char)c))
		return false;
	if (c == '-' && at(lx, off + 1) == '>')
		return false;
	if (c == '/' && at(lx, off + 1) == '*' && !inside)
		return false;
	if (c == ':') {
		int n = at(lx, off + 1);
		/* "key: v" and "key:'v'" separate; "a:b", "fd00::" do not */
		if (n >= 0 && is_word_byte((unsigned char)n))
			return true;
		return off > 0 && lx->src[off - 1] == ':';
	}
	return true;
}

static bool word_continues(const struct cfg_lexer *lx, size_t off)
{
	return word_byte_ok(lx, off, true);
}

static bool word_starts(const struct cfg_lexer *lx, size_t off)
{
	int c = at(lx, off);

	if (c == ':')
		return at(lx, off + 1) == ':'; /* "::1" */
	return word_byte_ok(lx, off, false);
}

static void lex_string(struct cfg_lexer *lx, struct cfg_token *t)
{
	char quote = lx->src[lx->off];
	size_t start = ++lx->off;
	size_t n = 0;

	/* first pass: find the end and the decoded length */
	for (size_t i = start;; i++) {
		int c = at(lx, i);
		if (c < 0 || c == '\n') {
			cfg_diag(lx->sink, false, t->pos,
				 "unterminated string (add the closing %c on the same line)",
				 quote);
			t->type = TOK_ERROR;
			lx->off = i;
			return;
		}
		if (c == 0) {
			cfg_diag(lx->sink, false,
				 (struct cfg_pos){ t->pos.line,
						   t->pos.col + (unsigned)(i - start) + 1,
						   t->pos.file },
				 "NUL byte in string (the config must be text)");
			t->type = TOK_ERROR;
			lx->off = i + 1;
			return;
		}
		if (c == quote)
			break;
		if (c == '\\') {
			int e = at(lx, i + 1);
			if (e == '\\' || e == '\'' || e == '"')
				i++;
		}
		n++;
	}
	t->type = TOK_STRING;
	t->text = cfg_malloc0(n + 1);
	t->len = n;
	size_t o = 0;
	while (lx->src[lx->off] != quote) {
		char c = lx->src[lx->off++];
		if (c == '\\') {
			int e = at(lx, lx->off);
			if (e == '\\' || e == '\'' || e == '"')
				c = lx->src[lx->off++];
		}
		t->text[o++] = c;
	}
	lx->off++; /* closing quote */
}

static void lex_one(struct cfg_lexer *lx, struct cfg_token *t)
{
	for (;;) {
		skip_space(lx);
		*t = (struct cfg_token){ .pos = here(lx), .bol = lx->at_bol };
		if (lx->off >= lx->len || lx->sink->full) {
			t->type = TOK_EOF;
			return;
		}
		lx->at_bol = false;

		int c = at(lx, lx->off);
		int c2 = at(lx, lx->off + 1);
		switch (c) {
		case '{':
			t->type = TOK_LBRACE;
			lx->off++;
			return;
		case '}':
			t->type = TOK_RBRACE;
			lx->off++;
			return;
		case '(':
			t->type = TOK_LPAREN;
			lx->off++;
			return;
		case ')':
			t->type = TOK_RPAREN;
			lx->off++;
			return;
		case ',':
			t->type = TOK_COMMA;
			lx->off++;
			return;
		case '[':
			t->type = TOK_LBRACKET;
			lx->off++;
			return;
		case ']':
			t->type = TOK_RBRACKET;
			lx->off++;
			return;
		case '!':
			t->type = TOK_NOT;
			lx->off++;
			return;
		case '\'':
		case '"':
			lex_string(lx, t);
			return;
		case '&':
			if (c2 == '&') {
				t->type = TOK_AND;
				lx->off += 2;
				return;
			}
			cfg_diag(lx->sink, false, t->pos,
				 "stray '&' (conditions are joined with '&&')");
			lx->off++;
			continue;
		case '-':
			if (c2 == '>') {
				t->type = TOK_ARROW;
				lx->off += 2;
				return;
			}
			break;
		case ':':
			if (c2 != ':') {
				t->type = TOK_COLON;
				lx->off++;
				return;
			}
			break;
		default:
			break;
		}
		if (word_starts(lx, lx->off)) {
			size_t start = lx->off;
			while (word_continues(lx, lx->off))
				lx->off++;
			t->type = TOK_IDENT;
			t->len = lx->off - start;
			t->text = cfg_strndup(lx->src + start, t->len);
			return;
		}

		/* not a token: report and go on with the next byte */
		if (c == 0) {
			cfg_diag(lx->sink, false, t->pos,
				 "NUL byte in the config (the config must be text)");
		} else if (c == '|') {
			cfg_diag(lx->sink, false, t->pos,
				 "unexpected '|' (there is no 'or': write one rule per "
				 "alternative)");
		} else {
			char *q = cfg_quote(lx->src + lx->off, 1);
			cfg_diag(lx->sink, false, t->pos,
				 "unexpected character '%s' (quote values that contain it)", q);
			free(q);
		}
		lx->off++;
		/* skip the rest of a garbage run in one go: one report per run */
		while (lx->off < lx->len && !word_starts(lx, lx->off) &&
		       !strchr(" \t\r\n{}(),!'\"#&:", lx->src[lx->off]) &&
		       !(lx->src[lx->off] == '-' && at(lx, lx->off + 1) == '>'))
			lx->off++;
	}
}

void cfg_lexer_init(struct cfg_lexer *lx, const char *src, size_t len, struct cfg_diag_sink *sink,
		    unsigned file)
{
	*lx = (struct cfg_lexer){
		.src = src,
		.len = len,
		.line = 1,
		.at_bol = true,
		.sink = sink,
		.file = file,
	};
}

void cfg_lexer_done(struct cfg_lexer *lx)
{
	for (unsigned i = 0; i < lx->n_la; i++)
		free(lx->la[i].text);
	lx->n_la = 0;
}

const struct cfg_token *cfg_peek(struct cfg_lexer *lx, unsigned k)
{
	while (lx->n_la <= k && k < CFG_LOOKAHEAD) {
		lex_one(lx, &lx->la[lx->n_la]);
		lx->n_la++;
	}
	return &lx->la[k < CFG_LOOKAHEAD ? k : CFG_LOOKAHEAD - 1];
}

void cfg_next(struct cfg_lexer *lx)
{
	cfg_peek(lx, 0);
	if (lx->la[0].type == TOK_EOF)
		return;
	free(lx->la[0].text);
	memmove(&lx->la[0], &lx->la[1], sizeof(lx->la[0]) * (CFG_LOOKAHEAD - 1));
	lx->n_la--;
	lx->consumed++;
}

char *cfg_take(struct cfg_lexer *lx)
{
	cfg_peek(lx, 0);
	char *s = lx->la[0].text;
	lx->la[0].text = NULL;
	cfg_next(lx);
	return s ? s : cfg_strdup("");
}

const char *cfg_tok_name(enum cfg_tok_type t)
{
	switch (t) {
	case TOK_EOF:
		return "end of file";
	case TOK_IDENT:
		return "word";
	case TOK_STRING:
		return "string";
	case TOK_LBRACE:
		return "'{'";
	case TOK_RBRACE:
		return "'}'";
	case TOK_LPAREN:
		return "'('";
	case TOK_RPAREN:
		return "')'";
	case TOK_COMMA:
		return "','";
	case TOK_COLON:
		return "':'";
	case TOK_NOT:
		return "'!'";
	case TOK_AND:
		return "'&&'";
	case TOK_LBRACKET:
		return "'['";
	case TOK_RBRACKET:
		return "']'";
	case TOK_ARROW:
		return "'->'";
	case TOK_ERROR:
		break;
	}
	return "invalid token";
}

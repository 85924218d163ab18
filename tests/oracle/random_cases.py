#!/usr/bin/env python3
"""Random templates for a differential run of the C engine against Go.

Usage: random_cases.py SEED COUNT [templates|printf|regex|regex-syntax] > cases.txt
(data: data.json; regex mode needs the oracle's -sprig)

regex mode: a random pattern (Go's regexp syntax, now and then an invalid
one) and a random text, through every Sprig regex function.

regex-syntax mode: token soup (most of it invalid) through mustRegexFind:
Go's parse errors, each message and the piece of the pattern it quotes.

printf mode: one printf call a case, with random flags, argument indexes,
widths and precisions (also from `*`), every verb, over values of every
kind, and too few or too many arguments.

Builds templates from the constructs the engine supports (actions with
trim markers, comments, if/else if, with/else, range with break and
continue, variables, define/template, parenthesised pipelines, every
builtin and many printf verbs) over the fields of data.json.  It avoids the
places where Go 1.22 (the engine's reference) and the Go 1.19 oracle
differ: ranging over integers, and templates calling themselves (the
engine's depth limit is lower than Go's).  Deterministic for a seed.
"""
import random
import sys

ATOMS = ['.str', '.i', '.f', '.t', '.nil', '.nope', '.list', '.map',
         '.nested', '.nested.x.y', '.ints', '.mixed', '.empty', '.zero',
         '.users', '$', '$x', '.', '1', '0', '-2', '2.5', '1e3', '"a b"',
         'nil', 'true', '.map.a', '.keys.B', '.lists', '.floats', '.one',
         "'x'", '0x10', '`raw`', '.uni', '.html', '.fbig', '.fsmall']
RANGEABLE = ['.list', '.map', '.users', '.lists', '.mixed', '.elist',
             '.emap', '.nil', '.nope', '.keys', '.floats', '.nested']
FUNCS = ['print', 'printf "%v-%v"', 'printf "%05d"', 'printf "%.1f"',
         'printf "%#v"', 'printf "%q"', 'printf "%x|%X"', 'printf "%-6s|"',
         'printf "%+.2e"', 'printf "%t %c"', 'printf "%T"', 'printf "%[2]v"',
         'len', 'not', 'and', 'or', 'eq', 'ne', 'lt', 'le', 'gt', 'ge',
         'slice', 'html', 'js', 'urlquery', 'index .list', 'index .map',
         'index .users']


def expr(rnd, d=0):
    r = rnd.random()
    if d > 2 or r < 0.45:
        a = rnd.choice(ATOMS)
        if rnd.random() < 0.1:
            a = '(' + expr(rnd, d + 1) + ')' + rnd.choice(['.a', '.x', '.name', ''])
        return a
    if r < 0.85:
        return rnd.choice(FUNCS) + ''.join(
            ' ' + arg(rnd, d + 1) for _ in range(rnd.randint(0, 3)))
    return expr(rnd, d + 1) + ' | ' + rnd.choice(FUNCS)


def arg(rnd, d):
    e = expr(rnd, d)
    return '(' + e + ')' if ' ' in e and not e.startswith('(') else e


def ws(rnd):
    return rnd.choice(['', ' ', '\n', '  \n\t'])


def block(rnd, d=0, inrange=False, calls=True):
    r = rnd.random()
    left, right = rnd.choice([('{{', '}}'), ('{{- ', '}}'), ('{{', ' -}}'),
                              ('{{- ', ' -}}')])
    sub = lambda: block(rnd, d + 1, inrange, calls)
    if d > 3 or r < 0.35:
        return ws(rnd) + left + expr(rnd) + right + ws(rnd)
    if r < 0.45:
        return (left + 'if ' + expr(rnd) + right + sub() + '{{else if ' +
                expr(rnd) + '}}' + sub() + '{{else}}x{{end}}')
    if r < 0.52:
        return '{{with $x := ' + expr(rnd) + '}}' + sub() + '{{else}}' + sub() + '{{end}}'
    if r < 0.65:
        body = block(rnd, d + 1, True, calls)
        if rnd.random() < 0.4:
            body += rnd.choice(['{{if $i}}{{break}}{{end}}',
                                '{{if not $v}}{{continue}}{{end}}'])
        return ('{{range $i, $v := ' + rnd.choice(RANGEABLE) + '}}' + body +
                '{{else}}E{{end}}')
    if r < 0.72:
        return '{{$x := ' + expr(rnd) + '}}' + sub() + '{{$x = ' + expr(rnd) + '}}{{$x}}'
    if r < 0.8 and calls:
        return '{{template "T" ' + expr(rnd) + '}}'
    if r < 0.85:
        return '{{/* c */}}' + sub() + '{{- /* c2 */ -}}'
    if r < 0.9 and inrange:
        return rnd.choice(['{{break}}', '{{continue}}'])
    return 't' + sub()


PRINTF_VALUES = ['.str', '.i', '.f', '.t', '.nil', '.nope', '.list', '.map',
                 '.ints', '.mixed', '.empty', '.zero', '.fneg', '.fbig',
                 '.fsmall', '.fthird', '.fe', '.fmil', '.uni', '.html',
                 '.big', '.neg', '.floats', '.strs', '.quote', '0', '-1',
                 '255', '65', '9786', '1.0', '0.5', '-0.0', '1e-7',
                 '123456.789', '"x"', '""', 'true', 'nil', "'é'", '.one',
                 '1e100', '3.14159']


def printf_spec(rnd):
    flags = ''.join(rnd.choice(['', '', '#', '0', '+', '-', ' '])
                    for _ in range(rnd.randint(0, 3)))
    width = rnd.choice(['', '', '1', '5', '12', '*'])
    prec = rnd.choice(['', '', '.', '.0', '.1', '.3', '.10', '.*'])
    index = rnd.choice([''] * 8 + ['[1]', '[2]'])
    return '%' + flags + index + width + prec + rnd.choice('vdsqxXobOcUeEfFgGtT%')


def printf_cases(seed, count):
    rnd = random.Random(seed)
    for k in range(count):
        fmt = '|'.join(printf_spec(rnd) for _ in range(rnd.randint(1, 3)))
        args = ' '.join(rnd.choice(PRINTF_VALUES)
                        for _ in range(rnd.randint(0, 4)))
        print('=== p%d-%d' % (seed, k))
        print('{{printf "%s" %s}}' % (fmt, args))


RE_ATOMS = ['a', 'b', 'c', 'x', 'ab', '.', r'\d', r'\w', r'\s', r'\W', r'\D',
            '[a-c]', '[^ab]', '[[:alpha:]]', '[[:^space:]]', r'[\d_]', r'\pL',
            r'\p{Greek}', r'\PL', r'\p{Lu}', 'é', '☺', 'K', 'k', r'\.', '^', '$',
            r'\b', r'\B', r'\A', r'\z', '(?i)', '(?m)', '(?s)', '(?U)',
            r'\x{263a}', r'\Q.*\E', r'\n', r'[^\n]', r'[\x00-\x{10FFFF}]', '-',
            '[^\n]']  # the last one holds a newline: raw strings span lines
RE_BAD = ['(', ')', '*', '[', '\\', r'\8', 'x{1001}', '[z-a]', '(?P<>x)',
          r'\pZz', '**', '(?<n>a)', r'\C', '[[:foo:]]']
RE_REPS = [''] * 10 + ['*', '+', '?', '{2}', '{1,3}', '{0,}', '*?', '+?',
                      '??', '{2,}?', '{0}', '{1,2}?']
RE_TEXT = ['a', 'b', 'c', 'x', 'A', 'B', ' ', '\\n', '1', '_', '.', 'é', '☺',
           'K', 'k', '\\u212a', 'α', 'Ω', '\\xff', 'ab', 'abc', '-', '$']


def re_expr(rnd, d=0):
    alts = []
    for _ in range(1 if rnd.random() < 0.75 or d > 1 else rnd.randint(2, 3)):
        seq = ''
        for _ in range(rnd.randint(0 if d else 1, 4)):
            r = rnd.random()
            if r < 0.7 or d > 2:
                t = rnd.choice(RE_ATOMS)
            elif r < 0.8:
                t = '(' + re_expr(rnd, d + 1) + ')'
            elif r < 0.87:
                t = '(?:' + re_expr(rnd, d + 1) + ')'
            elif r < 0.93:
                t = '(?P<n>' + re_expr(rnd, d + 1) + ')'
            else:
                t = '(?i:' + re_expr(rnd, d + 1) + ')'
            if not t.startswith('(?') or t.startswith('(?:') or \
                    t.startswith('(?P') or t.startswith('(?i:'):
                t += rnd.choice(RE_REPS)
            seq += t
        alts.append(seq)
    return '|'.join(alts)


def regex_cases(seed, count):
    rnd = random.Random(seed)
    for k in range(count):
        pat = re_expr(rnd)
        if rnd.random() < 0.05:
            i = rnd.randint(0, len(pat))
            pat = pat[:i] + rnd.choice(RE_BAD) + pat[i:]
        text = ''.join(rnd.choice(RE_TEXT) for _ in range(rnd.randint(0, 8)))
        first = rnd.choice(['mustRegexFindAll', 'regexFindAll'])
        print('=== r%d-%d' % (seed, k))
        print('{{$p := `%s`}}{{$s := "%s"}}'
              '{{%s $p $s -1 | toJson}} {{regexFind $p $s | quote}} '
              '{{regexMatch $p $s}} '
              '{{regexReplaceAll $p $s "<$1|${n}|$$>" | quote}} '
              '{{regexReplaceAllLiteral $p $s "$1" | quote}} '
              '{{regexSplit $p $s %d | toJson}} '
              '{{mustRegexFindAll $p $s 2 | len}}'
              % (pat, text, first, rnd.choice([-1, 0, 1, 2, 3])))


RE_TOKENS = ['(', ')', '?', '*', '+', '{', '}', '[', ']', '^', '$', '|', '\\',
             '-', ':', 'P', '<', '>', 'a', 'z', '1', '0', ',', 'p', 'x', 'i', 'm',
             's', 'U', 'Q', 'E', '.', 'L', '{2}', '{1,', '[:', ':]', 'alpha', '\\p',
             '\\x{', '\\Q', '(?', '(?P<', 'é', '\\8', 'Greek', 'b', 'B', 'A', 'C',
             'd', 'w', 'N', '1000', '1001', '"']


def regex_syntax_cases(seed, count):
    rnd = random.Random(seed)
    for k in range(count):
        pat = ''.join(rnd.choice(RE_TOKENS) for _ in range(rnd.randint(1, 8)))
        print('=== x%d-%d' % (seed, k))
        print('{{mustRegexFind `%s` "a1(é)"}}' % pat)


def main():
    seed, count = int(sys.argv[1]), int(sys.argv[2])
    if len(sys.argv) > 3 and sys.argv[3] == 'printf':
        printf_cases(seed, count)
        return
    if len(sys.argv) > 3 and sys.argv[3] == 'regex':
        regex_cases(seed, count)
        return
    if len(sys.argv) > 3 and sys.argv[3] == 'regex-syntax':
        regex_syntax_cases(seed, count)
        return
    rnd = random.Random(seed)
    for k in range(count):
        print('=== s%d-%d' % (seed, k))
        body = ''.join(block(rnd) for _ in range(rnd.randint(1, 3)))
        define = '{{define "T"}}' + block(rnd, 2, calls=False) + '{{end}}'
        print('{{$x := 1}}' + body + define)


main()

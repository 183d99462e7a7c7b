"""Skip regexes that cannot match, with one Aho-Corasick pass per utterance.

Most signal regexes need some literal text to be present ("refund", "date of birth").
We read each expression's parse tree once, find a required element whose every
alternative is plain text, and put those strings in one automaton. Per utterance,
a single scan tells which expressions are worth running; the rest are skipped.
Expressions with no such element (or only very short ones) always run. The same scan
reports extra literals (the texts the tagger's phrases and token patterns need).
"""
from __future__ import annotations

import re
import re._constants as C
import re._parser as parser

import ahocorasick

MIN_LITERAL = 3  # shorter strings occur in nearly every utterance: no filtering value
MAX_ALTERNATIVES = 500


def _literal(items) -> set[str] | None:
    """All strings a sequence can match, when it is plain text (with alternations); else None."""
    out = {""}
    for op, av in items:
        if op in (C.AT, C.ASSERT, C.ASSERT_NOT):
            continue  # zero-width: consumes nothing
        if op == C.LITERAL:
            out = {s + chr(av) for s in out}
        elif op == C.SUBPATTERN:
            inner = _literal(av[-1])
            if inner is None:
                return None
            out = {s + t for s in out for t in inner}
        elif op == C.BRANCH:
            options = [_literal(branch) for branch in av[1]]
            if any(o is None for o in options):
                return None
            out = {s + t for s in out for o in options for t in o}
        else:
            return None
        if len(out) > MAX_ALTERNATIVES:
            return None
    return out


def _prefixes(items) -> set[str]:
    """The plain-text starts of a sequence (each alternative up to its first non-text element)."""
    out = {""}
    for op, av in items:
        if op in (C.AT, C.ASSERT, C.ASSERT_NOT):
            continue
        if op == C.LITERAL:
            out = {s + chr(av) for s in out}
            continue
        if op in (C.SUBPATTERN, C.BRANCH):
            branches = [av[-1]] if op == C.SUBPATTERN else av[1]
            inner = set().union(*(_prefixes(b) for b in branches))
            if len(out) * len(inner) <= MAX_ALTERNATIVES:
                full = _literal([(op, av)])
                out = {s + t for s in out for t in inner}
                if full is not None:
                    continue
        break
    return out


def required_literals(expression: str) -> set[str] | None:
    """Strings one of which every match contains, or None when no useful set can be read off."""
    best = None
    run = []
    for item in list(parser.parse(expression)) + [(None, None)]:
        if item[0] is not None and item[0] in (C.LITERAL, C.SUBPATTERN, C.BRANCH) and _literal([item]) is not None:
            run.append(item)
            continue
        if item[0] in (C.AT, C.ASSERT, C.ASSERT_NOT):
            continue
        if item[0] in (C.SUBPATTERN, C.BRANCH):  # not plain text, but each alternative may start with some
            run.append(item)
            found = _prefixes(run)
            run = []
            if found and min(map(len, found)) >= MIN_LITERAL and (
                    best is None or min(map(len, found)) > min(map(len, best))):
                best = found
            continue
        if run:  # consecutive plain-text elements make longer, rarer strings
            found = _literal(run)
            if found and min(map(len, found)) >= MIN_LITERAL and (
                    best is None or min(map(len, found)) > min(map(len, best))):
                best = found
            run = []
    return best


class RegexPrefilter:
    """Which of a list of compiled expressions can match a text, and which extra keys' words it contains.

    Answers are bitmasks (bit i: expression i; then one bit per extra key, see `key_bit`), since OR-ing ints
    per literal found is the cheapest bookkeeping in the per-utterance hot path. `extra` maps a literal to keys
    reported when the literal occurs anywhere in the text; the tagger uses it for the texts its phrases and
    token patterns need, so one scan serves all three.
    """

    def __init__(self, expressions: list[re.Pattern], extra: dict[str, set[str]] | None = None):
        keys = sorted({k for ks in (extra or {}).values() for k in ks})
        self.key_bit = {k: 1 << (len(expressions) + j) for j, k in enumerate(keys)}
        self.expression_bits = (1 << len(expressions)) - 1
        self.always = 0
        owners: dict[str, int] = {}
        for literal, ks in (extra or {}).items():
            if literal:
                for k in ks:
                    owners[literal] = owners.get(literal, 0) | self.key_bit[k]
        for index, expr in enumerate(expressions):
            literals = None if expr.flags & re.IGNORECASE else required_literals(expr.pattern)
            if literals is None:
                self.always |= 1 << index
            else:
                for literal in literals:
                    owners[literal] = owners.get(literal, 0) | 1 << index
        self.automaton = ahocorasick.Automaton()
        for literal, bits in owners.items():
            self.automaton.add_word(literal, bits)
        if owners:
            self.automaton.make_automaton()
        self.has_words = bool(owners)

    def candidates(self, text: str) -> int:
        """Bitmask of expressions worth running and of extra keys whose literal occurs."""
        found = self.always
        if self.has_words:
            for _, bits in self.automaton.iter(text):
                found |= bits
        return found

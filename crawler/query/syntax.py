"""Reading a query: the lexer and the recursive-descent parser; `parse` turns text into a
`Query` or raises `QueryError` with the column where it is wrong. Pure."""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Mapping
from typing import NamedTuple

from crawler.query.aliases import builtin_expansions
from crawler.query.evaluate import (
    Query,
)
from crawler.query.nodes import (
    _TOKEN_RE,
    DEFAULT_NEAR_DISTANCE,
    FIELDS,
    MAX_NEAR_DISTANCE,
    And,
    Near,
    Node,
    Not,
    Or,
    QueryError,
    Term,
    TermKind,
    _with_field,
    tokenize,
)

# --------------------------------------------------------------------------- lexer

_FIELD_RE = re.compile(r"([A-Za-z][A-Za-z0-9_]*):")
_OPERATORS = frozenset({"AND", "OR", "NOT", "NEAR"})
_WORD_STOP = frozenset('()",')
_TERM_START = frozenset({"WORD", "PHRASE", "LPAREN", "NOT", "NEAR", "FIELD"})
MAX_NESTING = 100  # parentheses / NOT nesting; deeper is an error, not a RecursionError
MAX_NEAR_EXPANSION = 1000  # NEAR over alias sets: at most this many combinations of terms


class _Token(NamedTuple):
    kind: str  # WORD PHRASE FIELD LPAREN RPAREN COMMA AND OR NOT NEAR END
    value: str
    position: int
    exact: bool = False  # a PHRASE written ="..."


def _lex(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char.isspace():
            i += 1
        elif char in "(),":
            kind = {"(": "LPAREN", ")": "RPAREN", ",": "COMMA"}[char]
            tokens.append(_Token(kind, char, i))
            i += 1
        elif char == '"' or (char == "=" and text.startswith('"', i + 1)):
            exact = char == "="
            quote = i + 1 if exact else i
            end = text.find('"', quote + 1)
            if end < 0:
                raise QueryError(
                    "unterminated quote",
                    text,
                    quote,
                    "add a closing '\"' at the end of the phrase",
                )
            tokens.append(_Token("PHRASE", text[quote + 1 : end], i, exact))
            i = end + 1
        else:
            field = _FIELD_RE.match(text, i)
            if field:
                name = field.group(1)
                if name.lower() not in FIELDS:
                    raise QueryError(
                        f"unknown field '{name}'",
                        text,
                        i,
                        "the only field is title: (to search for the text itself, "
                        f'put it in quotes: "{name}:...")',
                    )
                tokens.append(_Token("FIELD", name.lower(), i))
                i = field.end()
                continue
            end = i
            while end < n and not text[end].isspace() and text[end] not in _WORD_STOP:
                end += 1
            word = text[i:end]
            tokens.append(_Token(word if word in _OPERATORS else "WORD", word, i))
            i = end
    tokens.append(_Token("END", "", n))
    return tokens


# --------------------------------------------------------------------------- parser


class _Parser:
    """Recursive descent over the lexer's tokens.

    query   := or END
    or      := and (OR and)*
    and     := unary ([AND] unary)*
    unary   := NOT unary | primary
    primary := WORD | PHRASE | '(' or ')' | near | FIELD (WORD | PHRASE | '(' or ')' | near)
    near    := NEAR '(' (WORD | PHRASE) (WORD | PHRASE)+ [',' WORD] ')'

    A WORD is a term (``nato``, ``defen*``), an exact term (``=nato``) or an alias set
    (``@nato``: an OR of its terms; inside NEAR, an OR of NEARs, one per combination).
    """

    def __init__(self, text: str, aliases: Mapping[str, tuple[Term, ...]]):
        self.text = text
        self.aliases = aliases
        self.tokens = _lex(text)
        self.at = 0
        self.depth = 0

    def error(self, message: str, position: int, hint: str | None = None) -> QueryError:
        return QueryError(message, self.text, position, hint)

    def peek(self) -> _Token:
        return self.tokens[self.at]

    def take(self) -> _Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def parse(self) -> Node:
        if not self.text.strip():
            raise self.error("empty query", 0, "write at least one term, e.g. nato")
        node = self.parse_or()
        token = self.peek()
        if token.kind == "RPAREN":
            raise self.error(
                "unbalanced parenthesis",
                token.position,
                "this ')' has no matching '('; remove it or add a '(' before it",
            )
        if token.kind != "END":
            raise self.unexpected(token)
        return node

    def unexpected(self, token: _Token) -> QueryError:
        if token.kind == "COMMA":
            return self.error(
                "unexpected ','",
                token.position,
                "a comma only separates the distance in NEAR(a b, 10); "
                "to match either of two terms write a OR b",
            )
        if token.kind in ("AND", "OR"):
            return self.error(
                f"dangling operator '{token.value}'",
                token.position,
                f"put a term before it (to search for the word, write it in lower case: "
                f"{token.value.lower()})",
            )
        if token.kind == "RPAREN":
            return self.error(
                "unbalanced parenthesis",
                token.position,
                "this ')' has no matching '('; remove it or add a '(' before it",
            )
        return self.error("expected a term", token.position)  # pragma: no cover - defensive

    def expect_operand(self, operator: _Token) -> None:
        """Raise if the token after `operator` cannot start a term."""
        if self.peek().kind not in _TERM_START:
            after = self.peek()
            what = "nothing" if after.kind in ("END", "RPAREN") else f"'{after.value}'"
            if operator.kind == "FIELD":
                raise self.error(
                    f"field '{operator.value}:' is followed by {what}",
                    operator.position,
                    "put a word, a phrase, NEAR(...) or a group in parentheses right after it, "
                    'e.g. title:nato or title:"air defence"',
                )
            raise self.error(
                f"dangling operator '{operator.value}'",
                operator.position,
                f"it is followed by {what}; put a term after it (to search for the word, "
                f"write it in lower case: {operator.value.lower()})",
            )

    def parse_or(self) -> Node:
        children = [self.parse_and()]
        while self.peek().kind == "OR":
            self.expect_operand(self.take())
            children.append(self.parse_and())
        return children[0] if len(children) == 1 else Or(tuple(children))

    def parse_and(self) -> Node:
        children = [self.parse_unary()]
        while True:
            kind = self.peek().kind
            if kind == "AND":
                self.expect_operand(self.take())
            elif kind not in _TERM_START:
                break
            children.append(self.parse_unary())
        return children[0] if len(children) == 1 else And(tuple(children))

    def parse_unary(self) -> Node:
        token = self.peek()
        if token.kind != "NOT":
            return self.parse_primary()
        self.take()
        self.expect_operand(token)
        self.enter(token)
        node = Not(self.parse_unary())
        self.depth -= 1
        return node

    def enter(self, token: _Token) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.error(
                "query nested too deeply",
                token.position,
                f"use at most {MAX_NESTING} levels of parentheses and NOT",
            )

    def parse_primary(self) -> Node:
        token = self.peek()
        if token.kind == "WORD":
            terms = self.operand(self.take())
            return terms[0] if len(terms) == 1 else Or(terms)
        if token.kind == "PHRASE":
            return self.phrase(self.take())
        if token.kind == "LPAREN":
            return self.group()
        if token.kind == "NEAR":
            return self.near()
        if token.kind == "FIELD":
            self.take()
            self.expect_operand(token)
            if self.peek().kind in ("NOT", "FIELD"):
                after = self.peek()
                raise self.error(
                    f"field '{token.value}:' is followed by '{after.value}'",
                    token.position,
                    "put a word, a phrase, NEAR(...) or a group in parentheses right after it, "
                    f"e.g. {token.value}:(NOT nato)",
                )
            return _with_field(self.parse_primary(), "title")
        raise self.unexpected(token)

    def group(self) -> Node:
        opening = self.take()
        if self.peek().kind == "RPAREN":
            raise self.error(
                "empty parentheses", opening.position, "put a term inside them or remove them"
            )
        self.enter(opening)
        node = self.parse_or()
        self.depth -= 1
        closing = self.peek()
        if closing.kind == "END":
            raise self.error(
                "unbalanced parenthesis",
                opening.position,
                "this '(' is never closed; add a ')' after the group",
            )
        if closing.kind != "RPAREN":
            raise self.unexpected(closing)
        self.take()
        return node

    def near(self) -> Node:
        keyword = self.take()
        if self.peek().kind != "LPAREN":
            raise self.error(
                "NEAR without parentheses",
                keyword.position,
                "write NEAR(a b, 10), or 'near' in lower case to search for the word",
            )
        opening = self.take()
        terms: list[tuple[Term, ...]] = []  # each place: its term, or an alias set's terms
        sets: list[_Token] = []
        while True:
            token = self.peek()
            if token.kind == "WORD":
                terms.append(self.operand(self.take()))
                if token.value.startswith("@"):
                    sets.append(token)
            elif token.kind == "PHRASE":
                terms.append((self.phrase(self.take()),))
            elif token.kind in ("COMMA", "RPAREN"):
                break
            elif token.kind == "END":
                raise self.error(
                    "unbalanced parenthesis",
                    opening.position,
                    "this '(' of NEAR is never closed; add a ')', e.g. NEAR(a b, 10)",
                )
            elif token.kind == "FIELD":
                raise self.error(
                    "field inside NEAR",
                    token.position,
                    f"put the field before NEAR: {token.value}:NEAR(a b)",
                )
            else:
                raise self.error(
                    f"'{token.value}' inside NEAR",
                    token.position,
                    "NEAR(...) takes only words, prefixes and phrases, e.g. NEAR(nato summit, 10)",
                )
        if len(terms) < 2:
            raise self.error(
                "NEAR needs at least two terms",
                keyword.position,
                "list two or more words, prefixes or phrases, e.g. NEAR(nato summit, 10)",
            )
        distance = DEFAULT_NEAR_DISTANCE
        if self.peek().kind == "COMMA":
            comma = self.take()
            value = self.peek()
            if value.kind != "WORD":
                raise self.error(
                    "missing NEAR distance",
                    comma.position,
                    f"put a whole number from 1 to {MAX_NEAR_DISTANCE} after the comma, "
                    "e.g. NEAR(a b, 10), or drop the comma for the default 10",
                )
            self.take()
            if not (value.value.isascii() and value.value.isdigit()) or not (
                1 <= int(value.value) <= MAX_NEAR_DISTANCE
            ):
                raise self.error(
                    f"bad NEAR distance '{value.value}'",
                    value.position,
                    f"use a whole number from 1 to {MAX_NEAR_DISTANCE}, e.g. NEAR(a b, 10)",
                )
            distance = int(value.value)
        closing = self.peek()
        if closing.kind != "RPAREN":
            if closing.kind == "END":
                raise self.error(
                    "unbalanced parenthesis",
                    opening.position,
                    "this '(' of NEAR is never closed; add a ')', e.g. NEAR(a b, 10)",
                )
            raise self.error(
                f"unexpected '{closing.value}' in NEAR",
                closing.position,
                "NEAR ends with the distance: NEAR(a b, 10)",
            )
        self.take()
        combinations = 1
        for place in terms:
            combinations *= len(place)
        if combinations > MAX_NEAR_EXPANSION:
            raise self.error(
                f"NEAR over alias sets makes {combinations} combinations of terms",
                sets[0].position,
                f"at most {MAX_NEAR_EXPANSION}; put fewer sets inside NEAR, or define a "
                "smaller set of your own under [aliases]",
            )
        nears = tuple(Near(combo, distance) for combo in itertools.product(*terms))
        return nears[0] if len(nears) == 1 else Or(nears)

    def operand(self, token: _Token) -> tuple[Term, ...]:
        """A WORD: its term, or the terms of the alias set it names (``@nato``)."""
        if not token.value.startswith("@"):
            return (self.word(token),)
        name = token.value[1:]
        if not name:
            raise self.error(
                "'@' without a set name", token.position, "write the set's name, e.g. @nato"
            )
        terms = self.aliases.get(name.lower())
        if terms is None:
            hint = (
                "define it under [aliases] in the config; newswatch rules aliases "
                "lists the sets there are"
            )
            close = difflib.get_close_matches(name.lower(), list(self.aliases), n=1, cutoff=0.7)
            if close:
                hint = f"did you mean @{close[0]}? ({hint})"
            raise self.error(f"unknown alias set '@{name}'", token.position, hint)
        return terms

    def word(self, token: _Token) -> Term:
        raw, position = token.value, token.position
        exact = raw.startswith("=")
        if exact:
            raw, position = raw[1:], position + 1
            if not raw:
                raise self.error(
                    "lone '='",
                    token.position,
                    "put '=' right before a word or a phrase, e.g. =Patriot or =\"air defence\"",
                )
            if raw.startswith(("=", "@")):
                raise self.error(
                    f"'={raw[0]}'",
                    token.position,
                    "'=' goes right before a word or a phrase, e.g. =Patriot; "
                    "an alias set's terms cannot be made exact by '='",
                )
            if raw.endswith("*"):
                raise self.error(
                    "'=' with '*'",
                    token.position,
                    "a prefix matches many forms, '=' exactly one; drop one of them",
                )
        prefix = raw.endswith("*")
        core = raw[:-1] if prefix else raw
        if prefix and not core:
            raise self.error(
                "lone '*'", position, "put '*' right after a word, e.g. defen* or \"air def*\""
            )
        star = core.find("*")
        if star >= 0:
            raise self.error(
                "'*' inside a word",
                position + star,
                "'*' is only allowed at the end of a word, e.g. defen*",
            )
        if raw.startswith("-") and len(raw) > 1:
            raise self.error(
                f"'{raw}' starts with '-'",
                position,
                f"a leading '-' does not exclude anything; to exclude, write NOT {raw[1:]}",
            )
        tokens = tuple(tokenize(core))
        if not tokens:
            raise self.error(
                f"'{raw}' has no letters or digits",
                position,
                "remove it; punctuation is ignored when matching",
            )
        kind: TermKind = "prefix" if prefix else ("word" if len(tokens) == 1 else "phrase")
        return Term(kind, tokens, exact=exact)

    def phrase(self, token: _Token) -> Term:
        inner, position = token.value, token.position
        if not inner.strip():
            raise self.error(
                "empty phrase", position, 'put words between the quotes, e.g. "air defence"'
            )
        body = inner.rstrip()
        prefix = body.endswith("*")
        if prefix and token.exact:
            raise self.error(
                "'=' with '*'",
                position,
                "a prefix matches many forms, '=' exactly one; drop one of them",
            )
        if token.exact:
            position += 1  # the quote
        core = body[:-1] if prefix else body
        star = core.find("*")
        if star >= 0 or (prefix and not _TOKEN_RE.match(core[-1:])):
            raise self.error(
                "misplaced '*' in a phrase",
                position + 1 + (star if star >= 0 else len(core)),
                "a phrase may only end with '*' right after a word, e.g. \"air def*\"",
            )
        tokens = tuple(tokenize(core))
        if not tokens:
            raise self.error(
                "phrase has no letters or digits",
                position,
                'put words between the quotes, e.g. "air defence"',
            )
        kind: TermKind = "prefix" if prefix else ("word" if len(tokens) == 1 else "phrase")
        return Term(kind, tokens, exact=token.exact)


def parse(text: str, aliases: Mapping[str, tuple[Term, ...]] | None = None) -> Query:
    """Parse a query; raise QueryError saying where a malformed query is wrong.

    `aliases`: the terms of each alias set ``@name`` may name (`crawler.query.aliases`:
    ``expansions(alias_sets(config_sets))``); None: the built-in sets only."""
    return Query(text, _Parser(text, builtin_expansions() if aliases is None else aliases).parse())

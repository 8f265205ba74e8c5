"""The one filter grammar of tracemark: a tokenizer and recursive-descent parser.

Runs, experiments and traces share it; each entity compiles the resulting AST to SQL
on its own (``store/sql/filter_compile.py`` and its users). The grammar, in order of binding::

    filter     := and_expr (OR and_expr)*
    and_expr   := primary (AND primary)*
    primary    := '(' filter ')' | comparison
    comparison := identifier ( ('=' | '!=' | '<>' | '<' | '<=' | '>' | '>=') value
                             | [NOT] (LIKE | ILIKE) string
                             | [NOT] IN '(' value (',' value)* ')'
                             | IS [NOT] NULL )
    identifier := segment ('.' segment)*     segment: word, `backquoted` or "double-quoted"
    value      := 'string' | "string" | number | TRUE | FALSE

Keywords are case-insensitive. Every error is an `InvalidFilterError` whose `position`
is the index of the offending character in the filter string.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from tracemark.exceptions import InvalidFilterError, InvalidInputError

__all__ = [
    "And",
    "Comparison",
    "Expr",
    "OrderBy",
    "Or",
    "Value",
    "parse_filter",
    "parse_order_by",
]

Value = str | int | float | bool

COMPARISON_OPERATORS = ("=", "!=", "<", "<=", ">", ">=")
PATTERN_OPERATORS = ("LIKE", "ILIKE", "NOT LIKE", "NOT ILIKE")
LIST_OPERATORS = ("IN", "NOT IN")
NULL_OPERATORS = ("IS NULL", "IS NOT NULL")


@dataclass(frozen=True, slots=True)
class Comparison:
    """One condition, such as ``metrics.accuracy > 0.9``.

    `prefix` is the first segment of a dotted identifier (``metrics``, ``tags``, ``span``)
    or None for a bare one (``status``); `key` is the rest, joined with dots. `op` is one
    of the normalized operators (``<>`` becomes ``!=``, keywords are upper case). `value`
    is a tuple for ``IN`` and None for ``IS [NOT] NULL``. `position` points at the
    identifier and `value_position` at the value, for error messages.
    """

    prefix: str | None
    key: str
    op: str
    value: Value | tuple[Value, ...] | None
    position: int
    value_position: int | None = None


@dataclass(frozen=True, slots=True)
class And:
    """All of `items` hold."""

    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """At least one of `items` holds."""

    items: tuple[Expr, ...]


Expr = Comparison | And | Or


@dataclass(frozen=True, slots=True)
class OrderBy:
    """One ``order_by`` clause, such as ``metrics.accuracy DESC``."""

    prefix: str | None
    key: str
    ascending: bool = True


def parse_filter(filter_string: str | None) -> Expr | None:
    """Parse a filter string into an AST; a missing or blank filter gives None.

    Example::

        parse_filter("metrics.accuracy > 0.9 AND tags.env = 'prod'")
        # And(items=(Comparison('metrics', 'accuracy', '>', 0.9, 0, 19),
        #            Comparison('tags', 'env', '=', 'prod', 27, 38)))

    Args:
        filter_string: The filter, e.g. ``"params.model = 'gpt-4o' OR status = 'FAILED'"``.

    Raises:
        InvalidFilterError: The filter does not parse; the error points at the bad token.
    """
    if filter_string is None or not filter_string.strip():
        return None
    parser = _Parser(filter_string, field="filter_string")
    expr = parser.parse_or()
    parser.expect_end()
    return expr


def parse_order_by(clauses: Sequence[str] | None) -> list[OrderBy]:
    """Parse ``order_by`` clauses: an identifier, optionally followed by ASC or DESC.

    Example::

        parse_order_by(["metrics.accuracy DESC", "params.`my key`"])
        # [OrderBy('metrics', 'accuracy', False), OrderBy('params', 'my key', True)]

    Args:
        clauses: The clauses, most significant first; None means no explicit order.

    Raises:
        InvalidFilterError: A clause does not parse (its `field` is ``"order_by"``).
        InvalidInputError: `clauses` is a single string instead of a list of them.
    """
    if clauses is None:
        return []
    if isinstance(clauses, str):
        raise InvalidInputError(
            f"order_by must be a list of strings, got the string {clauses!r}", field="order_by"
        )
    result = []
    for clause in clauses:
        if not isinstance(clause, str) or not clause.strip():
            raise InvalidInputError(
                f"order_by clause must be a non-empty string, got {clause!r}", field="order_by"
            )
        parser = _Parser(clause, field="order_by")
        prefix, key, _ = parser.parse_identifier()
        ascending = True
        if parser.peek_keyword("ASC", "DESC"):
            ascending = parser.advance().value == "ASC"
        parser.expect_end()
        result.append(OrderBy(prefix, key, ascending))
    return result


# --- tokens -------------------------------------------------------------------------------

_IDENT = "identifier"
_STRING = "string"
_NUMBER = "number"
_OPERATOR = "operator"
_KEYWORD = "keyword"
_PUNCT = "punctuation"
_END = "end"

_KEYWORDS = frozenset(
    {"AND", "OR", "NOT", "IN", "IS", "NULL", "LIKE", "ILIKE", "TRUE", "FALSE", "ASC", "DESC"}
)
_OPERATOR_SPELLINGS = {
    "=": "=",
    "!=": "!=",
    "<>": "!=",
    "<": "<",
    "<=": "<=",
    ">": ">",
    ">=": ">=",
}
_OPERATOR_HINTS = {"==": "'='", "=<": "'<='", "=>": "'>='", "!": "'!='"}
_NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_WORD_RE = re.compile(r"\w+")
# Deep enough for any hand-written filter, shallow enough to stay far from RecursionError.
_MAX_DEPTH = 100


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    # identifier: tuple of segments; string and keyword: str; number: int | float;
    # operator: the normalized spelling; punctuation: the character.
    value: object
    position: int
    text: str


class _Tokenizer:
    """Split a filter string into tokens, each remembering where it started."""

    def __init__(self, source: str, field: str) -> None:
        self.source = source
        self.field = field
        self.i = 0

    def tokens(self) -> list[_Token]:
        result = []
        source = self.source
        while True:
            while self.i < len(source) and source[self.i].isspace():
                self.i += 1
            if self.i >= len(source):
                result.append(_Token(_END, None, len(source), ""))
                return result
            result.append(self.next_token())

    def next_token(self) -> _Token:
        source, start = self.source, self.i
        char = source[start]
        if char in "(),":
            self.i += 1
            return _Token(_PUNCT, char, start, char)
        if char in "=!<>":
            return self.operator()
        if char == "'":
            return _Token(_STRING, self.quoted("'"), start, source[start : self.i])
        if char == '"':
            text = self.quoted('"')
            if self.at_segment_after_dot():
                return self.identifier(start, [text])
            return _Token(_STRING, text, start, source[start : self.i])
        if char == "`" or char.isalpha() or char == "_":
            return self.identifier(start, [])
        if _NUMBER_RE.match(source, start):
            return self.number()
        hint = ""
        if char in "-.:/":
            hint = "; quote keys with special characters in backquotes, e.g. tags.`my-key`"
        raise self.error(f"unexpected character {char!r} at position {start}{hint}", start)

    def operator(self) -> _Token:
        start = self.i
        while self.i < len(self.source) and self.source[self.i] in "=!<>":
            self.i += 1
        text = self.source[start : self.i]
        if text in _OPERATOR_SPELLINGS:
            return _Token(_OPERATOR, _OPERATOR_SPELLINGS[text], start, text)
        hint = _OPERATOR_HINTS.get(text, "one of =, !=, <>, <, <=, >, >=")
        raise self.error(f"unknown operator {text!r} at position {start}; use {hint}", start)

    def quoted(self, quote: str) -> str:
        """Read a quoted string or identifier; a doubled quote or backslash escapes."""
        source, start = self.source, self.i
        self.i += 1
        chars = []
        while self.i < len(source):
            char = source[self.i]
            if char == "\\" and self.i + 1 < len(source) and source[self.i + 1] in (quote, "\\"):
                chars.append(source[self.i + 1])
                self.i += 2
            elif char == quote and source.startswith(quote * 2, self.i):
                chars.append(quote)
                self.i += 2
            elif char == quote:
                self.i += 1
                return "".join(chars)
            else:
                # Other backslashes stay literal so LIKE escapes and paths survive.
                chars.append(char)
                self.i += 1
        what = "identifier" if quote == "`" else "string"
        raise self.error(f"unterminated {what} starting at position {start}", start)

    def at_segment_after_dot(self) -> bool:
        source, i = self.source, self.i
        return (
            i + 1 < len(source)
            and source[i] == "."
            and (source[i + 1] in '`"_' or source[i + 1].isalnum())
        )

    def identifier(self, start: int, segments: list[str]) -> _Token:
        """Read a dotted identifier; `segments` holds any already read."""
        quoted = bool(segments)
        if segments:
            self.i += 1  # the dot after the first, double-quoted segment
        while True:
            segment_start = self.i
            char = self.source[self.i]
            if char in '`"':
                segment = self.quoted(char)
                quoted = True
                if not segment:
                    raise self.error(f"empty quoted key at position {segment_start}", segment_start)
            else:
                match = _WORD_RE.match(self.source, self.i)
                if match is None:
                    raise self.error(
                        f"unexpected character {char!r} at position {segment_start}", segment_start
                    )
                segment = match.group()
                self.i += len(segment)
            segments.append(segment)
            if not self.at_segment_after_dot():
                break
            self.i += 1
        text = self.source[start : self.i]
        if not quoted and len(segments) == 1 and segments[0].upper() in _KEYWORDS:
            return _Token(_KEYWORD, segments[0].upper(), start, text)
        return _Token(_IDENT, tuple(segments), start, text)

    def number(self) -> _Token:
        start = self.i
        text = _NUMBER_RE.match(self.source, start).group()
        self.i += len(text)
        if self.i < len(self.source) and (
            self.source[self.i].isalnum() or self.source[self.i] in "_."
        ):
            end = self.i
            while end < len(self.source) and not self.source[end].isspace():
                end += 1
            raise self.error(
                f"invalid number {self.source[start:end]!r} at position {start}", start
            )
        try:
            value: int | float = float(text) if any(c in text for c in ".eE") else int(text)
        except ValueError:  # more digits than int() accepts from a string
            raise self.error(f"number too long at position {start}", start) from None
        return _Token(_NUMBER, value, start, text)

    def error(self, message: str, position: int) -> InvalidFilterError:
        return _error(message, self.source, position, self.field)


def _error(message: str, source: str, position: int, field: str) -> InvalidFilterError:
    return InvalidFilterError(message, filter_string=source, position=position, field=field)


# --- parser -------------------------------------------------------------------------------


class _Parser:
    """Recursive descent over the token list, one method per grammar rule."""

    def __init__(self, source: str, field: str) -> None:
        self.source = source
        self.field = field
        self.tokens = _Tokenizer(source, field).tokens()
        self.i = 0
        self.depth = 0

    # helpers

    def peek(self) -> _Token:
        return self.tokens[self.i]

    def advance(self) -> _Token:
        token = self.tokens[self.i]
        if token.kind != _END:
            self.i += 1
        return token

    def peek_keyword(self, *words: str) -> bool:
        token = self.peek()
        return token.kind == _KEYWORD and token.value in words

    def peek_punct(self, char: str) -> bool:
        token = self.peek()
        return token.kind == _PUNCT and token.value == char

    def error(self, message: str, token: _Token) -> InvalidFilterError:
        return _error(message, self.source, token.position, self.field)

    def expect_end(self) -> None:
        token = self.peek()
        if token.kind != _END:
            raise self.error(f"unexpected token {token.text!r} at position {token.position}", token)

    # rules

    def parse_or(self) -> Expr:
        items = [self.parse_and()]
        while self.peek_keyword("OR"):
            self.advance()
            items.append(self.parse_and())
        return _combine(Or, items)

    def parse_and(self) -> Expr:
        items = [self.parse_primary()]
        while self.peek_keyword("AND"):
            self.advance()
            items.append(self.parse_primary())
        return _combine(And, items)

    def parse_primary(self) -> Expr:
        token = self.peek()
        if not self.peek_punct("("):
            return self.parse_comparison()
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise self.error(
                f"parentheses nest deeper than {_MAX_DEPTH} levels at position {token.position}",
                token,
            )
        self.advance()
        expr = self.parse_or()
        closing = self.peek()
        if not self.peek_punct(")"):
            raise self.error(
                f"expected ')' to close the '(' at position {token.position}, "
                f"got {_describe(closing)} at position {closing.position}",
                closing,
            )
        self.advance()
        self.depth -= 1
        return expr

    def parse_identifier(self) -> tuple[str | None, str, int]:
        token = self.advance()
        if token.kind == _IDENT:
            segments = token.value
        elif token.kind == _STRING and token.text.startswith('"'):
            segments = (token.value,)
        else:
            raise self.error(
                "expected a key such as metrics.accuracy, params.model or tags.env, "
                f"got {_describe(token)} at position {token.position}",
                token,
            )
        if len(segments) == 1:
            return None, segments[0], token.position
        return segments[0], ".".join(segments[1:]), token.position

    def parse_comparison(self) -> Comparison:
        prefix, key, position = self.parse_identifier()
        token = self.advance()
        if token.kind == _OPERATOR:
            value_token = self.peek()
            value = self.parse_value(after=token.text)
            return Comparison(prefix, key, token.value, value, position, value_token.position)
        if token.kind == _KEYWORD and token.value == "IS":
            negated = self.peek_keyword("NOT")
            if negated:
                self.advance()
            null = self.advance()
            if not (null.kind == _KEYWORD and null.value == "NULL"):
                raise self.error(
                    f"expected NULL after IS{' NOT' if negated else ''}, "
                    f"got {_describe(null)} at position {null.position}",
                    null,
                )
            op = "IS NOT NULL" if negated else "IS NULL"
            return Comparison(prefix, key, op, None, position, token.position)
        negated = token.kind == _KEYWORD and token.value == "NOT"
        if negated:
            token = self.advance()
        if token.kind == _KEYWORD and token.value in ("LIKE", "ILIKE"):
            op = f"NOT {token.value}" if negated else token.value
            pattern = self.peek()
            value = self.parse_value(after=op)
            if not isinstance(value, str):
                raise self.error(
                    f"{op} needs a quoted string pattern, got {pattern.text!r} "
                    f"at position {pattern.position}",
                    pattern,
                )
            return Comparison(prefix, key, op, value, position, pattern.position)
        if token.kind == _KEYWORD and token.value == "IN":
            op = "NOT IN" if negated else "IN"
            opening = self.peek()
            values = self.parse_list(op)
            return Comparison(prefix, key, op, values, position, opening.position)
        if negated:
            raise self.error(
                f"expected LIKE, ILIKE or IN after NOT, got {_describe(token)} "
                f"at position {token.position}",
                token,
            )
        raise self.error(
            "expected an operator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, IS) after "
            f"{self.source[position : token.position].strip()!r}, got {_describe(token)} "
            f"at position {token.position}",
            token,
        )

    def parse_list(self, op: str) -> tuple[Value, ...]:
        opening = self.advance()
        if not (opening.kind == _PUNCT and opening.value == "("):
            raise self.error(
                f"expected '(' after {op}, got {_describe(opening)} at position {opening.position}",
                opening,
            )
        values = [self.parse_value(after=f"{op} (")]
        while True:
            token = self.advance()
            if token.kind == _PUNCT and token.value == ")":
                return tuple(values)
            if not (token.kind == _PUNCT and token.value == ","):
                raise self.error(
                    f"expected ',' or ')' in the {op} list, got {_describe(token)} "
                    f"at position {token.position}",
                    token,
                )
            values.append(self.parse_value(after="','"))

    def parse_value(self, after: str) -> Value:
        token = self.advance()
        if token.kind in (_STRING, _NUMBER):
            return token.value
        if token.kind == _KEYWORD and token.value in ("TRUE", "FALSE"):
            return token.value == "TRUE"
        hint = ""
        if token.kind == _KEYWORD and token.value == "NULL":
            hint = "; use IS NULL or IS NOT NULL to test for a missing value"
        elif token.kind == _IDENT:
            hint = f"; quote strings, e.g. '{token.text}'"
        raise self.error(
            f"expected a value after {_quote(after)}, got {_describe(token)} "
            f"at position {token.position}{hint}",
            token,
        )


def _combine(kind: type[And] | type[Or], items: list[Expr]) -> Expr:
    if len(items) == 1:
        return items[0]
    flat: list[Expr] = []
    for item in items:
        # (a AND b) AND c means the same as a AND b AND c; keep the tree shallow.
        flat.extend(item.items if isinstance(item, kind) else (item,))
    return kind(tuple(flat))


def _describe(token: _Token) -> str:
    return "the end of the filter" if token.kind == _END else repr(token.text)


def _quote(text: str) -> str:
    return text if text.startswith("'") else f"'{text}'"

"""`requestFilter`: NotificationAPI's log query grammar, compiled into a PostgreSQL jsonpath.

The grammar (NotificationAPI's dashboard custom query, which its SDKs pass as
`requestFilter`), one expression per string; the strings of one request OR:

    expression := term ('||' term)*
    term       := factor ('&&' factor)*
    factor     := '(' expression ')' | property condition
    property   := ['$.'] ('request' ('.' key | '[' index ']' | '[*]')* | 'trackingId')
    condition  := ('=' | '!=' | '>' | '>=' | '<' | '<=') value
                | 'IS' ['NOT'] ('NULL' | 'TRUE' | 'FALSE')   (IS NOT: present and not that)
                | ['NOT'] 'EXISTS'
    value      := "double" or 'single' quoted string (`*` a wildcard, `\\*` a star) | number
                | a bare word (a string)

Semantics, chosen to match what support staff expect of a log search:

- `=` on a string is exact and case-sensitive; with a `*` it is a wildcard match.
- `!=` is the negation of `=`: a missing property matches it.
- Numbers compare as numbers (`request.mergeTags.amount >= 10`); `"10"` is a string.
- An array on the way matches when any element does (`request.mergeTags.items.sku = "A1"`).

The compiled jsonpath is evaluated by PostgreSQL (`request @@ path`), never in Python, and it
reaches the database as a bound parameter. Every key and string is written as a jsonpath
string literal (JSON escaping), so no input can change the shape of the path.

Index: a GIN index `jsonb_path_ops` on `request` serves the equality shapes: `=` of a
string or number, and IS NULL/TRUE/FALSE, over any request path (array steps, `[0]` or `[*]`,
included); an `&&` with at least one such shape (the index narrows the rows, PostgreSQL checks
the rest on them); an `||` when every branch is served. Alone, wildcards (like_regex), `!=`,
range comparisons, EXISTS, NOT EXISTS and IS NOT are evaluated row by row on the rows the other
filters and the date range select, and so is any expression that names `trackingId`.
tests/logs/api/test_request_index.py checks each shape against PostgreSQL's plan.
"""

import json
import re
import uuid
from dataclasses import dataclass
from decimal import Decimal

MAX_EXPRESSION_LENGTH = 2000
MAX_DEPTH = 20
_ROOTS = ("request", "trackingId")
_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<op>&&|\|\||!=|==|>=|<=|=|>|<)
  | (?P<paren>[()])
  | (?P<dquote>"(?:[^"\\]|\\.)*")
  | (?P<squote>'(?:[^'\\]|\\.)*')
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![\w.$\[\]*@-]))
  | (?P<word>(?:[^\s()=!<>&|"']|(?<=\.)"(?:[^"\\]|\\.)*")+)
    """,
    re.VERBOSE,
)
_PATH_PART = re.compile(r"""\.(?:([^."\[\]]+)|"((?:[^"\\]|\\.)*)")|\[(\d+|\*)\]""")
_KEYWORDS = {"IS", "NOT", "NULL", "TRUE", "FALSE", "EXISTS"}
_REGEX_SPECIAL = set(".^$*+?()[]{}|\\")
_STAR = object()


class RequestFilterError(ValueError):
    """A malformed expression; the message says where parsing stopped and what was expected."""


@dataclass(frozen=True)
class CompiledFilter:
    # A jsonpath predicate over the stored request; `$trackingId` when `uses_tracking_id`.
    jsonpath: str
    uses_tracking_id: bool
    # True when a GIN jsonb_path_ops index on `request` can answer it (see the docstring).
    indexable: bool


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    position: int


def _tokenize(expression: str) -> list[_Token]:
    tokens, position = [], 0
    while position < len(expression):
        match = _TOKEN.match(expression, position)
        if match is None:
            char = expression[position]
            raise RequestFilterError(
                f"unterminated string at character {position + 1}: close the quote."
                if char in "\"'"
                else f"unexpected {char!r} at character {position + 1}."
            )
        if match.lastgroup != "space":
            tokens.append(_Token(match.lastgroup, match.group(), position))
        position = match.end()
    return tokens


def _string_literal(value: str) -> str:
    # A JSON string is a jsonpath string literal; ensure_ascii keeps it plain 7-bit.
    return json.dumps(value)


def _unquote(text: str) -> tuple[str, bool]:
    """The string a value holds, and whether it is a wildcard pattern: then the string is an
    anchored regular expression. A backslash takes the next character literally (`\\*`)."""
    parts: list = []  # characters, and _STAR for each unescaped `*`
    position = 0
    while position < len(text):
        char = text[position]
        if char == "\\" and position + 1 < len(text):
            parts.append(text[position + 1])
            position += 2
            continue
        parts.append(_STAR if char == "*" else char)
        position += 1
    if not any(part is _STAR for part in parts):
        return "".join(parts), False
    regex = "".join(
        ".*" if part is _STAR else ("\\" + part if part in _REGEX_SPECIAL else part)
        for part in parts
    )
    return f"^{regex}$", True


class _Parser:
    def __init__(self, expression: str):
        self.expression = expression
        self.tokens = _tokenize(expression)
        self.index = 0

    # -- helpers ---------------------------------------------------------------------------
    def _peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def _where(self) -> str:
        token = self._peek()
        if token is None:
            return "at the end"
        return f"at character {token.position + 1} ({token.text[:30]!r})"

    def _fail(self, expected: str):
        raise RequestFilterError(f"expected {expected} {self._where()}.")

    def _take(self) -> _Token:
        token = self._peek()
        self.index += 1
        return token

    def _keyword(self, *words: str) -> str | None:
        token = self._peek()
        if token is not None and token.kind == "word" and token.text.upper() in words:
            self.index += 1
            return token.text.upper()
        return None

    # -- grammar ---------------------------------------------------------------------------
    def parse(self) -> CompiledFilter:
        if not self.tokens:
            raise RequestFilterError(
                'the expression is empty: write e.g. request.mergeTags.item="Krabby Patty".'
            )
        node = self._expression(0)
        if self._peek() is not None:
            self._fail("'&&', '||' or the end of the expression")
        return node

    def _expression(self, depth: int) -> CompiledFilter:
        return self._chain(depth, "||", self._term)

    def _term(self, depth: int) -> CompiledFilter:
        return self._chain(depth, "&&", self._factor)

    def _chain(self, depth: int, operator: str, operand) -> CompiledFilter:
        nodes = [operand(depth)]
        while (token := self._peek()) is not None and token.text == operator:
            self.index += 1
            nodes.append(operand(depth))
        return _combine(operator, nodes)

    def _factor(self, depth: int) -> CompiledFilter:
        if depth > MAX_DEPTH:
            raise RequestFilterError(f"parentheses nest deeper than {MAX_DEPTH} {self._where()}.")
        token = self._peek()
        if token is not None and token.text == "(":
            self.index += 1
            node = self._expression(depth + 1)
            token = self._peek()
            if token is None or token.text != ")":
                self._fail("')'")
            self.index += 1
            return node
        return self._comparison()

    def _comparison(self) -> CompiledFilter:
        path, root = self._property()
        tracking = root == "trackingId"
        if self._keyword("IS"):
            negate = self._keyword("NOT") is not None
            word = self._keyword("NULL", "TRUE", "FALSE")
            if word is None:
                self._fail("NULL, TRUE or FALSE after IS")
            if negate:
                # Present and something else: a missing property is not "not null".
                return CompiledFilter(f"exists({path} ? (@ != {word.lower()}))", tracking, False)
            return CompiledFilter(f"{path} == {word.lower()}", tracking, not tracking)
        if self._keyword("NOT"):
            if self._keyword("EXISTS") is None:
                self._fail("EXISTS after NOT")
            return CompiledFilter(f"!(exists({path}))", tracking, False)
        if self._keyword("EXISTS"):
            return CompiledFilter(f"exists({path})", tracking, False)
        token = self._peek()
        if token is None or token.kind != "op" or token.text in ("&&", "||"):
            self._fail("an operator (=, !=, >, >=, <, <=, IS, NOT EXISTS)")
        operator = self._take().text
        return self._compare(path, operator, tracking)

    def _compare(self, path: str, operator: str, tracking: bool) -> CompiledFilter:
        token = self._peek()
        if token is None or token.kind not in ("dquote", "squote", "number", "word"):
            self._fail(f"a value after '{operator}'")
        self.index += 1
        if token.kind == "number":
            literal, wildcard = _number_literal(token), False
        else:
            text, wildcard = _unquote(token.text[1:-1] if token.kind != "word" else _bare(token))
            if tracking and not wildcard:
                text = _tracking_id_text(text)
            literal = _string_literal(text)
            if operator in (">", ">=", "<", "<="):
                raise RequestFilterError(
                    f"'{operator}' compares numbers, but {token.text!r} at character "
                    f"{token.position + 1} is a string: write a number, or use = or !=."
                )
        if wildcard:
            node = CompiledFilter(f"{path} like_regex {literal}", tracking, False)
        else:
            jsonpath_operator = "==" if operator in ("=", "==", "!=") else operator
            node = CompiledFilter(
                f"{path} {jsonpath_operator} {literal}",
                tracking,
                not tracking and jsonpath_operator == "==",
            )
        return _negate(node) if operator == "!=" else node

    def _property(self) -> tuple[str, str]:
        """The property as a jsonpath over the request (or $trackingId), and its root."""
        token = self._peek()
        if token is None or token.kind != "word":
            self._fail("a property such as request.mergeTags.item")
        self.index += 1
        text = token.text[2:] if token.text.startswith("$.") else token.text
        root = next((r for r in _ROOTS if text == r or text.startswith(r + ".")), None)
        root = root or next((r for r in _ROOTS if text.startswith(r + "[")), None)
        if root is None:
            raise RequestFilterError(
                f"unknown property {token.text!r} at character {token.position + 1}: start it "
                "with request. (the send body, e.g. request.mergeTags.item or "
                "request.user.email) or use trackingId."
            )
        if root == "trackingId":
            if text != "trackingId":
                raise RequestFilterError("trackingId has no properties below it.")
            return "$trackingId", root
        rest, parts, position = text[len(root) :], ["$"], 0
        while position < len(rest):
            match = _PATH_PART.match(rest, position)
            if match is None:
                raise RequestFilterError(
                    f"cannot read the property {token.text!r} from character "
                    f"{token.position + 1 + len(token.text) - len(rest) + position}: use "
                    'dots between keys, [0] for an array element, "quotes" for odd keys.'
                )
            key, quoted_key, index = match.groups()
            if index is not None:
                parts.append(f"[{index}]")
            else:
                name = key if key is not None else json.loads(f'"{quoted_key}"')
                parts.append("." + _string_literal(name))
            position = match.end()
        if len(parts) == 1:
            raise RequestFilterError(
                f"{token.text!r} at character {token.position + 1} is the whole request: name "
                "a property inside it, e.g. request.notificationId."
            )
        return "".join(parts), root


def _bare(token: _Token) -> str:
    if token.text.upper() in _KEYWORDS:
        raise RequestFilterError(
            f"{token.text!r} at character {token.position + 1} is a keyword, not a value: "
            f'quote it ("{token.text}") or use IS {token.text.upper()}.'
        )
    return token.text


def _number_literal(token: _Token) -> str:
    # jsonpath takes JSON's number syntax: "007" must be written 7, and PostgreSQL's numeric
    # has a range.
    number = Decimal(token.text)
    if not -1000 <= number.adjusted() <= 1000:
        raise RequestFilterError(
            f"the number {token.text[:30]!r} at character {token.position + 1} is out of range."
        )
    return str(number)


def _tracking_id_text(text: str) -> str:
    # Tracking ids are stored as UUIDs: any spelling of one compares in canonical form.
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return text


def _combine(operator: str, nodes: list[CompiledFilter]) -> CompiledFilter:
    """`&&` or `||` of the nodes."""
    if len(nodes) == 1:
        return nodes[0]
    tracking = any(n.uses_tracking_id for n in nodes)
    # The index narrows an AND by any branch it serves, an OR only when it serves them all;
    # a path naming $trackingId is matched by jsonb_path_match, which no index answers.
    served = any if operator == "&&" else all
    return CompiledFilter(
        f" {operator} ".join(f"({n.jsonpath})" for n in nodes),
        tracking,
        served(n.indexable for n in nodes) and not tracking,
    )


def _negate(node: CompiledFilter) -> CompiledFilter:
    return CompiledFilter(f"!({node.jsonpath})", node.uses_tracking_id, False)


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def request_filter_compile(expressions: list[str]) -> CompiledFilter:
    """Compile the `requestFilter` strings (OR'ed) into one jsonpath predicate. Raises
    RequestFilterError naming the expression and where parsing stopped."""
    nodes = []
    for number, expression in enumerate(expressions):
        if not isinstance(expression, str):
            raise RequestFilterError(f"requestFilter[{number}]: it must be a string.")
        if "\x00" in expression or not _is_unicode(expression):
            raise RequestFilterError(
                f"requestFilter[{number}]: it holds a NUL character or a lone surrogate: "
                "send plain UTF-8 text."
            )
        if len(expression) > MAX_EXPRESSION_LENGTH:
            raise RequestFilterError(
                f"requestFilter[{number}]: it is longer than {MAX_EXPRESSION_LENGTH} characters."
            )
        try:
            nodes.append(_Parser(expression).parse())
        except RequestFilterError as exc:
            raise RequestFilterError(f"requestFilter[{number}]: {exc}") from None
    return _combine("||", nodes)

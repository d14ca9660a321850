"""requestFilter: the grammar compiled to a jsonpath, evaluated by PostgreSQL."""

import json

import hypothesis
import pytest
from django.db import connection

from logs.api.query_filter import RequestFilterError, request_filter_compile

DOCUMENT = {
    "notificationId": "order_tracking",
    "user": {"id": "user-42", "email": "ada@gmail.com", "number": "+14155550100"},
    "mergeTags": {
        "item": "Krabby Patty Burger",
        "qty": 3,
        "price": 4.5,
        "gift": True,
        "coupon": None,
        "odd key": "yes",
        "quote": 'say "hi"',
        "star": "a*b",
        "products": [{"sku": {"title": "Kelp Fries"}}, {"sku": {"title": "Coral Bits"}}],
        "tags": ["new", "vip"],
        "ünïcode": "çà",
    },
}


def matches(expression: str, document=DOCUMENT, tracking_id="00000000-0000-0000-0000-00000000abcd"):
    compiled = request_filter_compile([expression])
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT jsonb_path_match(%s::jsonb, %s::jsonpath, "
            "jsonb_build_object('trackingId', %s::text), true)",
            [json.dumps(document), compiled.jsonpath, tracking_id],
        )
        return cursor.fetchone()[0] is True


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('request.mergeTags.item="Krabby Patty Burger"', True),
        ('$.request.mergeTags.item = "Krabby Patty Burger"', True),
        ("request.mergeTags.item='Krabby Patty Burger'", True),
        ('request.mergeTags.item = "krabby patty burger"', False),  # case-sensitive
        ('request.mergeTags.item != "Krabby Patty Burger"', False),
        ('request.mergeTags.item != "Kelp"', True),
        ('request.mergeTags.missing != "Kelp"', True),  # missing is != anything
        ("request.mergeTags.qty = 3", True),
        ("request.mergeTags.qty = 003", True),
        ("request.mergeTags.qty = 3.0e0", True),
        ("request.mergeTags.qty > -1e999", True),
        ("request.mergeTags.qty > 2 && request.mergeTags.qty <= 3", True),
        ("request.mergeTags.qty >= 4", False),
        ("request.mergeTags.price < 4.6", True),
        ('request.mergeTags.qty = "3"', False),  # a string is not a number
        ('request.user.email = "*@gmail.com"', True),
        ('request.user.email = "*@GMAIL.com"', False),
        ('request.user.email = "ada@*"', True),
        ('request.user.email = "*.com"', True),
        ('request.user.email = "ada@gmail?com"', False),  # ? is not a wildcard
        ('request.user.email = "ada@gmail.c*m"', True),
        ('request.mergeTags.star = "a\\*b"', True),  # \* is a literal star
        ('request.mergeTags.star = "a\\*"', False),
        ('request.mergeTags.quote = "say \\"hi\\""', True),
        ("request.mergeTags.gift IS TRUE", True),
        ("request.mergeTags.gift IS FALSE", False),
        ("request.mergeTags.coupon IS NULL", True),
        ("request.mergeTags.item IS NULL", False),
        ("request.mergeTags.item IS NOT NULL", True),
        ("request.mergeTags.missing IS NOT NULL", False),
        ("request.mergeTags.coupon IS NOT NULL", False),
        ("request.mergeTags.missing NOT EXISTS", True),
        ("request.mergeTags.item NOT EXISTS", False),
        ("request.mergeTags.item EXISTS", True),
        ("request.mergeTags.products[0].sku.title = 'Kelp Fries'", True),
        ("request.mergeTags.products[1].sku.title = 'Kelp Fries'", False),
        ("request.mergeTags.products[*].sku.title = 'Coral Bits'", True),
        ("request.mergeTags.products.sku.title = 'Coral Bits'", True),  # arrays: any element
        ("request.mergeTags.tags = vip", True),
        ('request.mergeTags."odd key" = yes', True),
        ('request.mergeTags.ünïcode = "çà"', True),
        ("request.notificationId = order_tracking && request.user.id = user-42", True),
        ("request.notificationId = welcome || request.user.id = user-42", True),
        ("request.notificationId = welcome || request.user.id = user-41", False),
        (
            "(request.notificationId = welcome || request.mergeTags.qty = 3) "
            "&& request.user.email = '*@gmail.com'",
            True,
        ),
        ("request.notificationId = welcome || (request.mergeTags.qty = 3 && request.x = 1)", False),
        (
            "request.notificationId = order_tracking "
            "&& (request.x = 1 || request.mergeTags.qty = 3)",
            True,
        ),
        ('trackingId = "00000000-0000-0000-0000-00000000ABCD"', True),
        ('trackingId = "*abcd"', True),
        ('trackingId != "00000000-0000-0000-0000-00000000abcd"', False),
        ("request.mergeTags.item is not null && request.mergeTags.gift is true", True),
    ],
)
def test_expression_matches_as_documented(expression, expected):
    assert matches(expression) is expected


@pytest.mark.django_db
def test_values_cannot_change_the_shape_of_the_path():
    # Quotes, backslashes and jsonpath syntax inside a value stay inside its string literal.
    sneaky = '" || $ == $ || "'
    expression = 'request.mergeTags.x = "\\" || $ == $ || \\""'
    compiled = request_filter_compile([expression])
    assert compiled.jsonpath == '$."mergeTags"."x" == "\\" || $ == $ || \\""'
    assert matches(expression, {"mergeTags": {"x": "other"}}) is False
    assert matches(expression, {"mergeTags": {"x": sneaky}}) is True


def test_several_expressions_or():
    compiled = request_filter_compile(["request.a = 1", "request.b = 2"])
    assert compiled.jsonpath == '($."a" == 1) || ($."b" == 2)'
    assert compiled.indexable


@pytest.mark.parametrize(
    ("expressions", "indexable"),
    [
        (["request.a = 1"], True),
        (["request.a.b = 'x' && request.c IS NULL"], True),
        (["request.a = 1 || request.b IS TRUE"], True),
        (["request.a = 'x*'"], False),
        (["request.a != 1"], False),
        (["request.a > 1"], False),
        (["request.a[*].b = 1"], True),
        (["request.a = 1 && request.b != 2"], True),  # the index narrows, the rest is checked
        (["request.a != 1 && (request.b = 2 || request.c IS TRUE)"], True),
        (["request.a = 1 || request.b != 2"], False),
        (["request.a EXISTS"], False),
        (["request.a IS NOT NULL"], False),
        (["trackingId = 'x'"], False),
        (["trackingId = 'x' && request.a = 1"], False),  # jsonb_path_match: no index
        (["request.a = 1", "request.b = 'y*'"], False),
    ],
)
def test_which_shapes_an_index_can_answer(expressions, indexable):
    assert request_filter_compile(expressions).indexable is indexable


@pytest.mark.parametrize(
    ("expression", "says"),
    [
        ("", "the expression is empty"),
        ("request.a =", "expected a value after '=' at the end"),
        ("request.a = 1 request.b = 2", "at character 15 ('request.b')"),
        ("(request.a = 1", "expected ')' at the end"),
        ("request.a = 1)", "at character 14 (')')"),
        ("request.a", "expected an operator"),
        ("request.a IS MAYBE", "NULL, TRUE or FALSE after IS at character 14"),
        ("request.a NOT 1", "EXISTS after NOT"),
        ('request.a = "open', "unterminated string at character 13"),
        ("request.a ! 1", "unexpected '!' at character 11"),
        ("user.email = 'x'", "unknown property 'user.email' at character 1"),
        ("request = 1", "is the whole request"),
        ("request..a = 1", "cannot read the property"),
        ("trackingId.x = 1", "trackingId has no properties"),
        ('request.a > "x"', "compares numbers"),
        ("request.a = NULL", "is a keyword"),
        ("&& request.a = 1", "expected a property"),
        ("(" * 30 + "request.a = 1" + ")" * 30, "nest deeper"),
        ("request.a = 'x\x00'", "NUL character"),
        ("request.a = 1e99999", "out of range"),
        ("request.a = '" + "x" * 2100 + "'", "longer than"),
    ],
)
def test_malformed_expression_says_where_parsing_stopped(expression, says):
    with pytest.raises(RequestFilterError) as error:
        request_filter_compile(["request.ok = 1", expression])
    assert str(error.value).startswith("requestFilter[1]: ")
    assert says in str(error.value)


_PIECES = [
    "request", "$.", ".", "mergeTags", "a", '"k y"', "[0]", "[*]", "trackingId", " ", "=", "!=",
    ">", ">=", "<", "<=", "==", "&&", "||", "(", ")", '"', "'", "*", "\\", "IS", "NOT", "NULL",
    "TRUE", "FALSE", "EXISTS", "0", "007", "-1.5e3", "1e9999", "x", "é", "😀", "$", "@", "?",
]  # fmt: skip


@pytest.mark.django_db
@hypothesis.settings(max_examples=300, deadline=None, derandomize=True, database=None)
@hypothesis.given(
    pieces=hypothesis.strategies.lists(hypothesis.strategies.sampled_from(_PIECES), max_size=14)
)
def test_any_input_is_refused_with_a_message_or_compiles_to_a_jsonpath_postgresql_accepts(pieces):
    expression = "".join(pieces)
    try:
        compiled = request_filter_compile([expression])
    except RequestFilterError as error:
        assert str(error).startswith("requestFilter[0]: ")
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT jsonb_path_match('{}'::jsonb, %s::jsonpath, '{\"trackingId\": \"x\"}', true)",
            [compiled.jsonpath],
        )


_st = hypothesis.strategies
_paths = _st.builds(
    lambda prefix, parts: prefix + "request" + "".join(parts),
    _st.sampled_from(["", "$."]),
    _st.lists(_st.sampled_from([".a", ".mergeTags", '."k y"', "[0]", "[*]", ".é"]), min_size=1),
) | _st.just("trackingId")
_values = _st.sampled_from(
    ['"x"', "'y*'", '"a\\"b"', "007", "-1.5e3", "0", "word", '"*"', '"\\\\"', '"😀"']
)
_conditions = _st.one_of(
    _st.builds(
        lambda p, o, v: f"{p} {o} {v}", _paths, _st.sampled_from(["=", "!=", "=="]), _values
    ),
    _st.builds(lambda p, o: f"{p} {o} 3", _paths, _st.sampled_from([">", ">=", "<", "<="])),
    _st.builds(
        lambda p, w: f"{p} {w}",
        _paths,
        _st.sampled_from(["IS NULL", "IS TRUE", "is false", "IS NOT NULL", "EXISTS", "NOT EXISTS"]),
    ),
)
_expressions = _st.recursive(
    _conditions,
    lambda inner: _st.builds(
        lambda a, op, b, paren: f"({a} {op} {b})" if paren else f"{a} {op} {b}",
        inner,
        _st.sampled_from(["&&", "||"]),
        inner,
        _st.booleans(),
    ),
    max_leaves=6,
)


@pytest.mark.django_db
@hypothesis.settings(max_examples=300, deadline=None, derandomize=True, database=None)
@hypothesis.given(expression=_expressions)
def test_every_expression_of_the_grammar_compiles_to_a_jsonpath_postgresql_accepts(expression):
    compiled = request_filter_compile([expression])
    with connection.cursor() as cursor:
        cursor.execute(
            'SELECT jsonb_path_match(%s::jsonb, %s::jsonpath, \'{"trackingId": "x"}\', true)',
            [json.dumps(DOCUMENT), compiled.jsonpath],
        )

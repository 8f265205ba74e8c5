import pytest

from tracemark.exceptions import InvalidFilterError, InvalidInputError
from tracemark.store.filter_grammar import (
    And,
    Comparison,
    Or,
    OrderBy,
    parse_filter,
    parse_order_by,
)


def only(filter_string):
    """Parse a filter holding one comparison and return it."""
    expr = parse_filter(filter_string)
    assert isinstance(expr, Comparison)
    return expr


def shape(expr):
    """Reduce an AST to nested tuples of (prefix, key, op, value) for readable asserts."""
    if isinstance(expr, And):
        return ("AND", *(shape(item) for item in expr.items))
    if isinstance(expr, Or):
        return ("OR", *(shape(item) for item in expr.items))
    return (expr.prefix, expr.key, expr.op, expr.value)


def parse_error(filter_string):
    with pytest.raises(InvalidFilterError) as info:
        parse_filter(filter_string)
    return info.value


@pytest.mark.parametrize("filter_string", [None, "", "   ", "\n\t"])
def test_missing_or_blank_filter_parses_to_none(filter_string):
    assert parse_filter(filter_string) is None


def test_comparison_records_prefix_key_op_value_and_positions():
    assert parse_filter("metrics.accuracy > 0.9") == Comparison(
        "metrics", "accuracy", ">", 0.9, position=0, value_position=19
    )


@pytest.mark.parametrize(
    ("text", "op"),
    [
        ("=", "="),
        ("!=", "!="),
        ("<>", "!="),
        ("<", "<"),
        ("<=", "<="),
        (">", ">"),
        (">=", ">="),
    ],
)
def test_comparison_operators_are_normalized(text, op):
    assert only(f"metrics.loss {text} 1").op == op


def test_operators_need_no_surrounding_spaces():
    assert shape(parse_filter("metrics.loss<=-2 AND tags.env='prod'")) == (
        "AND",
        ("metrics", "loss", "<=", -2),
        ("tags", "env", "=", "prod"),
    )


@pytest.mark.parametrize(
    ("filter_string", "op"),
    [
        ("params.model LIKE 'gpt%'", "LIKE"),
        ("params.model like 'gpt%'", "LIKE"),
        ("params.model ILIKE 'gpt%'", "ILIKE"),
        ("params.model NOT LIKE 'gpt%'", "NOT LIKE"),
        ("params.model not ilike 'gpt%'", "NOT ILIKE"),
    ],
)
def test_pattern_operators_are_case_insensitive_keywords(filter_string, op):
    cmp = only(filter_string)
    assert (cmp.op, cmp.value) == (op, "gpt%")


def test_in_list_holds_every_value_in_order():
    cmp = only("params.model IN ('a', \"b\", 3, 2.5, true)")
    assert (cmp.op, cmp.value) == ("IN", ("a", "b", 3, 2.5, True))


def test_not_in_with_a_single_value():
    assert shape(parse_filter("attributes.status not in ('FAILED')")) == (
        "attributes",
        "status",
        "NOT IN",
        ("FAILED",),
    )


@pytest.mark.parametrize(
    ("filter_string", "op"),
    [("tags.env IS NULL", "IS NULL"), ("tags.env is not null", "IS NOT NULL")],
)
def test_null_tests_have_no_value(filter_string, op):
    cmp = only(filter_string)
    assert (cmp.op, cmp.value, cmp.value_position) == (op, None, 9)


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("'prod'", "prod"),
        ('"prod"', "prod"),
        ("'it''s'", "it's"),
        ('"say ""hi"""', 'say "hi"'),
        (r"'it\'s'", "it's"),
        (r"'back\\slash'", "back\\slash"),
        (r"'50\%'", r"50\%"),
        (r"'C:\dir'", r"C:\dir"),
        ("''", ""),
        ("'AND OR ( ) ='", "AND OR ( ) ="),
    ],
)
def test_string_quoting_and_escapes(literal, value):
    assert only(f"tags.note = {literal}").value == value


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("0", 0),
        ("42", 42),
        ("-7", -7),
        ("+7", 7),
        ("0.5", 0.5),
        (".5", 0.5),
        ("-0.25", -0.25),
        ("1.", 1.0),
        ("1e3", 1000.0),
        ("2.5E-2", 0.025),
        ("-1e+2", -100.0),
    ],
)
def test_numbers_keep_their_type(literal, value):
    parsed = only(f"metrics.loss > {literal}").value
    assert parsed == value
    assert type(parsed) is type(value)


@pytest.mark.parametrize(("literal", "value"), [("true", True), ("FALSE", False), ("True", True)])
def test_booleans_parse_as_python_bools(literal, value):
    assert only(f"feedback.helpful = {literal}").value is value


@pytest.mark.parametrize(
    ("identifier", "prefix", "key"),
    [
        ("status", None, "status"),
        ("metrics.accuracy", "metrics", "accuracy"),
        ("tags.mlflow.runName", "tags", "mlflow.runName"),
        ("metrics.`f1 score`", "metrics", "f1 score"),
        ("tags.`mlflow.user`", "tags", "mlflow.user"),
        ("params.`learning-rate`", "params", "learning-rate"),
        ("params.`a``b`", "params", "a`b"),
        ('metrics."f1 score"', "metrics", "f1 score"),
        ('"tags"."my key"', "tags", "my key"),
        ("`tags`.env", "tags", "env"),
        ('"status"', None, "status"),
        ("`a.b`", None, "a.b"),
        ("metadata.session_id", "metadata", "session_id"),
        ("span.name", "span", "name"),
        ("metrics.1st", "metrics", "1st"),
        ("tags.in", "tags", "in"),
    ],
)
def test_identifiers_split_into_prefix_and_key(identifier, prefix, key):
    cmp = only(f"{identifier} = 'x'")
    assert (cmp.prefix, cmp.key) == (prefix, key)


def test_and_binds_tighter_than_or():
    assert shape(parse_filter("a = 1 OR b = 2 AND c = 3")) == (
        "OR",
        (None, "a", "=", 1),
        ("AND", (None, "b", "=", 2), (None, "c", "=", 3)),
    )


def test_parentheses_override_precedence():
    assert shape(parse_filter("(a = 1 OR b = 2) AND c = 3")) == (
        "AND",
        ("OR", (None, "a", "=", 1), (None, "b", "=", 2)),
        (None, "c", "=", 3),
    )


def test_chains_of_one_operator_are_flat():
    assert shape(parse_filter("a = 1 and (b = 2 AND c = 3) And d = 4")) == (
        "AND",
        (None, "a", "=", 1),
        (None, "b", "=", 2),
        (None, "c", "=", 3),
        (None, "d", "=", 4),
    )


def test_redundant_parentheses_are_dropped():
    assert parse_filter("((a = 1))") == Comparison(None, "a", "=", 1, position=2, value_position=6)


def test_positions_point_at_each_identifier():
    expr = parse_filter("a = 1 OR  tags.env = 'x'")
    assert [item.position for item in expr.items] == [0, 10]


@pytest.mark.parametrize(
    ("filter_string", "message", "position"),
    [
        ("metrics.accuracy >", "expected a value after '>'", 18),
        ("metrics.accuracy > AND", "expected a value after '>', got 'AND'", 19),
        ("a == 1", "unknown operator '==' at position 2; use '='", 2),
        ("a =< 1", "unknown operator '=<'", 2),
        ("a ! 1", "unknown operator '!'", 2),
        ("name = 'abc", "unterminated string starting at position 7", 7),
        ('name = "abc', "unterminated string starting at position 7", 7),
        ("tags.`abc = 'x'", "unterminated identifier starting at position 5", 5),
        ("status = 'x' foo", "unexpected token 'foo' at position 13", 13),
        ("a = 1)", "unexpected token ')' at position 5", 5),
        ("a = 1 ,", "unexpected token ',' at position 6", 6),
        ("(a = 1", "expected ')' to close the '(' at position 0", 6),
        ("a = 1 AND", "expected a key such as metrics.accuracy", 9),
        ("OR a = 1", "expected a key such as metrics.accuracy", 0),
        ("'a' = 1", "expected a key", 0),
        ("a 1", "expected an operator", 2),
        ("a", "expected an operator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, IS) after 'a'", 1),
        ("params.model = gpt4", "quote strings, e.g. 'gpt4'", 15),
        ("tags.env = NULL", "use IS NULL or IS NOT NULL", 11),
        ("a NOT = 1", "expected LIKE, ILIKE or IN after NOT", 6),
        ("a IS 1", "expected NULL after IS, got '1'", 5),
        ("a IS NOT", "expected NULL after IS NOT", 8),
        ("a LIKE 1", "LIKE needs a quoted string pattern", 7),
        ("a NOT ILIKE true", "NOT ILIKE needs a quoted string pattern", 12),
        ("a IN 'x'", "expected '(' after IN", 5),
        ("a IN ()", "expected a value after 'IN ('", 6),
        ("a IN ('x',)", "expected a value after ','", 10),
        ("a IN ('x' 'y')", "expected ',' or ')' in the IN list", 10),
        ("a IN ('x'", "expected ',' or ')' in the IN list, got the end of the filter", 9),
        ("tags.my-key = 'x'", "quote keys with special characters in backquotes", 7),
        ("a = 1 && b = 2", "unexpected character '&' at position 6", 6),
        ("1abc = 2", "invalid number '1abc'", 0),
        ("a = 1.2.3", "invalid number '1.2.3'", 4),
        ("tags.`` = 'x'", "empty quoted key", 5),
        ("a = 1" + "0" * 5000, "number too long", 4),
    ],
)
def test_syntax_errors_name_the_problem_and_its_position(filter_string, message, position):
    error = parse_error(filter_string)
    assert message in error.message
    assert error.position == position
    assert error.field == "filter_string"
    assert error.filter_string == filter_string


def test_error_message_draws_a_caret_under_the_offending_token():
    error = parse_error("metrics.accuracy >> 1")
    assert str(error).splitlines()[1:] == ["  metrics.accuracy >> 1", "                   ^"]


def test_deep_nesting_is_an_error_not_a_crash():
    error = parse_error("(" * 500 + "a = 1" + ")" * 500)
    assert "parentheses nest deeper than 100 levels" in error.message


def test_order_by_none_or_empty_means_no_clauses():
    assert parse_order_by(None) == []
    assert parse_order_by([]) == []


def test_order_by_clauses_parse_direction_and_quoted_keys():
    assert parse_order_by(
        ["metrics.accuracy DESC", "attributes.start_time", "params.`my key` ASC", "name desc"]
    ) == [
        OrderBy("metrics", "accuracy", ascending=False),
        OrderBy("attributes", "start_time", ascending=True),
        OrderBy("params", "my key", ascending=True),
        OrderBy(None, "name", ascending=False),
    ]


@pytest.mark.parametrize(
    ("clause", "message", "position"),
    [
        ("metrics.accuracy DOWN", "unexpected token 'DOWN' at position 17", 17),
        ("metrics.accuracy DESC ASC", "unexpected token 'ASC'", 22),
        ("DESC", "expected a key", 0),
        ("metrics.`acc", "unterminated identifier", 8),
    ],
)
def test_invalid_order_by_clause_points_at_the_token(clause, message, position):
    with pytest.raises(InvalidFilterError) as info:
        parse_order_by([clause])
    assert message in info.value.message
    assert info.value.position == position
    assert info.value.field == "order_by"


@pytest.mark.parametrize("clauses", ["metrics.accuracy DESC", [""], ["  "], [None], [3]])
def test_order_by_must_be_a_list_of_non_empty_strings(clauses):
    with pytest.raises(InvalidInputError) as info:
        parse_order_by(clauses)
    assert info.value.field == "order_by"

"""The formula language of field mappings: every function, every error with its position, and its limits."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest

from vrtx_pipelines.mapping.expressions import MAX_SOURCE_CHARS, ExpressionError, Scope, utc_today
from vrtx_pipelines.mapping.formula import compile_formula

TYPES = {
    "first_name": "string",
    "last_name": "string",
    "phone": "string",
    "mobile": "string",
    "amount": "number",
    "issue_date": "date",
    "updated_at": "datetime",
    "archived": "boolean",
    "value": "any",
}


def run(source: str, **record: Any) -> Any:
    formula = compile_formula(source, TYPES, None)
    return formula.evaluate(Scope({**record}, lambda path: record.get(path)))


def error(source: str, **record: Any) -> ExpressionError:
    with pytest.raises(ExpressionError) as caught:
        run(source, **record)
    return caught.value


@pytest.mark.parametrize(
    ("source", "record", "expected"),
    [
        ('concat(first_name, " ", last_name)', {"first_name": "Ada", "last_name": "Lovelace"}, "Ada Lovelace"),
        ('concat(first_name, " ", last_name)', {"first_name": "Ada"}, "Ada "),
        ("round(amount * 1.1, 2)", {"amount": Decimal("10.00")}, Decimal("11.00")),
        ("round(amount * 1.1, 2)", {"amount": 19.99}, Decimal("21.99")),
        ("round(amount)", {"amount": Decimal("2.5")}, Decimal("3")),  # half-up, as invoices round
        ("coalesce(phone, mobile)", {"mobile": "021 555"}, "021 555"),
        ("coalesce(phone, mobile)", {"phone": "", "mobile": "021 555"}, "021 555"),
        ("coalesce(phone, mobile)", {"phone": "09 1"}, "09 1"),
        ('date_format(issue_date, "%d/%m/%Y")', {"issue_date": date(2024, 3, 9)}, "09/03/2024"),
        ('date_format(value, "%Y-%m-%d")', {"value": "2024-03-09T10:00:00Z"}, "2024-03-09"),
        ("date(updated_at)", {"updated_at": datetime(2024, 3, 9, 23, 0)}, date(2024, 3, 9)),
        ("upper(first_name)", {"first_name": "ada"}, "ADA"),
        ("lower(first_name)", {"first_name": "ADA"}, "ada"),
        ("trim(first_name)", {"first_name": "  ada  "}, "ada"),
        ("upper(first_name)", {}, None),
        ("substr(first_name, 1, 2)", {"first_name": "Lovelace"}, "ov"),
        ("substr(first_name, 4)", {"first_name": "Lovelace"}, "lace"),
        ('replace(phone, " ", "-")', {"phone": "09 555 1234"}, "09-555-1234"),
        ("len(first_name)", {"first_name": "Ada"}, Decimal(3)),
        ('number("1,234.50") + 1', {}, Decimal("1235.50")),
        ("text(amount)", {"amount": Decimal("12.50")}, "12.50"),
        ('if(archived, "gone", "here")', {"archived": True}, "gone"),
        ('if(amount > 100, "big", "small")', {"amount": Decimal(5)}, "small"),
        ("abs(-amount)", {"amount": Decimal(3)}, Decimal(3)),
        ("amount % 3 == 1 and not archived", {"amount": Decimal(7), "archived": False}, True),
        ("amount / 4", {"amount": Decimal(10)}, Decimal("2.5")),
        ("-(amount - 1) * 2", {"amount": Decimal(4)}, Decimal(-6)),
        ("issue_date < updated_at", {"issue_date": date(2024, 1, 1), "updated_at": datetime(2024, 1, 2)}, True),
        ('first_name == "Ada" or false', {"first_name": "Ada"}, True),
        ("null", {}, None),
        ("'it\\'s'", {}, "it's"),
        ('field("Contact.Name")', {"Contact.Name": "Acme"}, "Acme"),
        ("amount + 1", {}, None),
    ],
)
def test_formula_evaluates_as_documented(source: str, record: dict[str, Any], expected: Any) -> None:
    assert run(source, **record) == expected


def test_today_is_the_utc_date() -> None:
    assert run("today()") == utc_today()


@pytest.mark.parametrize(
    ("source", "position", "fragment"),
    [
        ('__import__("os")', 0, "unknown function '__import__'"),
        ("first_name.upper", 10, "attribute access is not allowed"),
        ("a.b", 1, "attribute access is not allowed"),
        ("first_name[0]", 10, "indexing is not allowed"),
        ("lambda x: x", 8, "no lambdas"),
        ("[x for x in y]", 0, "indexing is not allowed"),
        ("upper(first_name=1)", 16, "'=' is not an operator"),
        ("concat(*first_name)", 7, "expected a value"),
        ('f"{first_name}"', 1, "unexpected"),
        ("amount ** 100000", 7, "no power operator"),
        ("concat(first_name", 17, "expected ')'"),
        ("round(amount, 2", 15, "expected ')'"),
        ('"open string', 0, "never closed"),
        ("amount +", 8, "expected a value"),
        ("1 2", 2, "unexpected '2'"),
        ("amount < 1 < 2", 11, "cannot be chained"),
        ("nope(1)", 0, "unknown function 'nope'"),
        ("frist_name", 0, "unknown name 'frist_name'"),
        ("round(amount, 2, 3)", 0, "takes 1 to 2 argument(s), not 3"),
        ("today(1)", 0, "takes 0 argument(s), not 1"),
        ("first_name + 1", 0, "needs numbers, not string"),
        ("upper(amount)", 6, "takes string as argument 1, not number"),
        ("first_name < amount", 11, "cannot compare string with number"),
        ("field(first_name)", 6, "quoted field path"),
        ("1abc", 1, "after a number"),
        ("$x", 0, "unexpected character '$'"),
        ("", 0, "empty"),
    ],
)
def test_bad_formulas_are_refused_with_the_position(source: str, position: int, fragment: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_formula(source, TYPES, None)
    assert fragment in caught.value.message
    assert caught.value.position == position


def test_a_formula_longer_than_the_limit_is_refused() -> None:
    with pytest.raises(ExpressionError, match="longer than"):
        compile_formula("1 + " * (MAX_SOURCE_CHARS // 4 + 1) + "1", TYPES, None)


def test_deep_nesting_is_refused() -> None:
    with pytest.raises(ExpressionError, match="nests deeper"):
        compile_formula("(" * 40 + "1" + ")" * 40, TYPES, None)


def test_too_many_parts_are_refused() -> None:
    with pytest.raises(ExpressionError, match="more than 200 parts"):
        compile_formula("+".join(["1"] * 250), TYPES, None)


def test_numbers_cannot_grow_without_bound() -> None:
    big = "99999999999999999999"
    found = error(f"{big} * {big} * {big}")
    assert "too large" in found.message


def test_division_by_zero_is_an_error_not_a_crash() -> None:
    assert "division by zero" in error("amount / 0", amount=Decimal(1)).message


def test_strings_cannot_blow_up() -> None:
    long_text = "x" * 5000
    with pytest.raises(ExpressionError, match="longer than 10000"):
        run("concat(first_name, first_name, first_name)", first_name=long_text)
    with pytest.raises(ExpressionError, match="longer than 10000"):
        run('replace(first_name, "x", "yyyyyyyyyy")', first_name="x" * 2000)


def test_run_time_type_errors_name_the_position() -> None:
    # `value` is typed "any" when saved; what it holds is checked when it runs.
    found = error("upper(value)", value=Decimal(5))
    assert found.position == 6 and "not number" in found.message
    assert "not a number" in error("number(value)", value="abc").message
    assert "not a date" in error('date_format(value, "%Y")', value="soon").message
    assert "does not know %c" in error('date_format(issue_date, "%c")', issue_date=date(2024, 1, 1)).message


def test_unknown_names_are_allowed_when_the_record_fields_are_not_known() -> None:
    formula = compile_formula("concat(FirstName, LastName)", None, None)
    assert formula.evaluate(Scope({"FirstName": "A"}, lambda _path: None)) == "A"

"""Formulas: parsed and checked once (names, functions, arity, types), then evaluated with a step budget."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, DecimalException
from typing import Any

from vrtx_pipelines.mapping.expressions import (
    ANY,
    BOOLEAN,
    DATE,
    DATETIME,
    MAX_STEPS,
    NULL,
    NUMBER,
    NUMBER_CONTEXT,
    STRING,
    Binary,
    Call,
    ExpressionError,
    Literal,
    Node,
    Scope,
    Unary,
    Variable,
    checked_string,
    parse,
    to_value,
    truthy,
    value_type,
)
from vrtx_pipelines.mapping.functions import FUNCTIONS, check_argument

_ARITHMETIC = {"+", "-", "*", "/", "%"}
_ORDERING = {"<", "<=", ">", ">="}
_ORDERED_TYPES = {NUMBER, STRING, DATE, DATETIME}
# field("Dotted.Path") -> the path's type, or raises ExpressionError when the record has no such field.
FieldCheck = Callable[[str, int], str]


@dataclass(frozen=True)
class Formula:
    source: str
    tree: Node
    result_type: str

    def evaluate(self, scope: Scope) -> Any:
        return _Evaluator(scope).run(self.tree)


def compile_formula(source: str, variables: Mapping[str, str] | None, field_check: FieldCheck | None) -> Formula:
    """Parse and check ``source``. ``variables`` maps each readable name to its type (``None``: names are not
    known in advance, any is accepted); ``field_check`` validates ``field("...")`` paths."""
    tree = parse(source)
    result = _Checker(variables, field_check).infer(tree)
    return Formula(source, tree, result)


class _Checker:
    def __init__(self, variables: Mapping[str, str] | None, field_check: FieldCheck | None) -> None:
        self.variables = variables
        self.field_check = field_check

    def infer(self, node: Node) -> str:
        if isinstance(node, Literal):
            return value_type(node.value)
        if isinstance(node, Variable):
            if self.variables is None:
                return ANY
            if node.name not in self.variables:
                known = ", ".join(sorted(self.variables)[:12])
                raise ExpressionError(f"unknown name {node.name!r} (the record has: {known}, ...)", node.position)
            return self.variables[node.name]
        if isinstance(node, Unary):
            operand = self.infer(node.operand)
            if node.operator == "not":
                return BOOLEAN
            _expect_number(operand, "-", node.operand.position)
            return NUMBER
        if isinstance(node, Binary):
            return self.binary(node)
        assert isinstance(node, Call)
        return self.call(node)

    def binary(self, node: Binary) -> str:
        left, right = self.infer(node.left), self.infer(node.right)
        if node.operator in ("and", "or", "==", "!="):
            return BOOLEAN
        if node.operator in _ORDERING:
            for side, kind in ((node.left, left), (node.right, right)):
                if kind not in (*_ORDERED_TYPES, ANY, NULL):
                    raise ExpressionError(f"{kind} values cannot be ordered with {node.operator!r}", side.position)
            if ANY not in (left, right) and NULL not in (left, right) and not _comparable(left, right):
                raise ExpressionError(f"cannot compare {left} with {right}", node.position)
            return BOOLEAN
        _expect_number(left, node.operator, node.left.position)
        _expect_number(right, node.operator, node.right.position)
        return NUMBER

    def call(self, node: Call) -> str:
        function = FUNCTIONS.get(node.name)
        if function is None:
            raise ExpressionError(
                f"unknown function {node.name!r} (functions: {', '.join(sorted(FUNCTIONS))})", node.position
            )
        count = len(node.args)
        if count < function.min_args or (function.max_args is not None and count > function.max_args):
            expected = (
                str(function.min_args)
                if function.min_args == function.max_args
                else f"{function.min_args} to {function.max_args}"
            )
            raise ExpressionError(f"{node.name}() takes {expected} argument(s), not {count}", node.position)
        if node.name == "field":
            return self.field(node)
        kinds = [self.infer(arg) for arg in node.args]
        for index, (arg, kind) in enumerate(zip(node.args, kinds, strict=True)):
            accepted = function.accepted(index)
            if node.name == "if" or kind in (ANY, NULL) or ANY in accepted or kind in accepted:
                continue
            raise ExpressionError(
                f"{node.name}() takes {' or '.join(accepted)} as argument {index + 1}, not {kind}", arg.position
            )
        if node.name == "if":
            return _common(kinds[1:])
        if node.name == "coalesce":
            return _common(kinds)
        return function.returns

    def field(self, node: Call) -> str:
        (arg,) = node.args
        if not isinstance(arg, Literal) or not isinstance(arg.value, str):
            raise ExpressionError('field() takes a quoted field path, e.g. field("Contact.Name")', arg.position)
        return self.field_check(arg.value, arg.position) if self.field_check else ANY


def _expect_number(kind: str, operator: str, position: int) -> None:
    if kind not in (NUMBER, ANY, NULL):
        hint = " (join texts with concat())" if kind == STRING and operator == "+" else ""
        raise ExpressionError(f"{operator!r} needs numbers, not {kind}{hint}", position)


def _comparable(left: str, right: str) -> bool:
    dates = {DATE, DATETIME}
    return left == right or (left in dates and right in dates)


def _common(kinds: list[str]) -> str:
    concrete = {kind for kind in kinds if kind != NULL}
    return concrete.pop() if len(concrete) == 1 else ANY


class _Evaluator:
    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.steps = 0

    def run(self, node: Node) -> Any:
        try:
            return self.eval(node)
        except DecimalException as exc:
            raise ExpressionError(f"arithmetic failed: {_decimal_reason(exc)}", node.position) from exc

    def eval(self, node: Node) -> Any:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise ExpressionError("the formula took too many steps", node.position)
        if isinstance(node, Literal):
            return node.value
        if isinstance(node, Variable):
            # Names were checked when the formula was saved: a field the record lacks reads as null.
            return to_value(self.scope.variables.get(node.name))
        if isinstance(node, Unary):
            operand = self.eval(node.operand)
            if node.operator == "not":
                return not truthy(operand)
            if operand is None:
                return None
            return NUMBER_CONTEXT.minus(_number(operand, "-", node.operand.position))
        if isinstance(node, Binary):
            return self.binary(node)
        assert isinstance(node, Call)
        return self.call(node)

    def binary(self, node: Binary) -> Any:
        if node.operator == "and":
            return truthy(self.eval(node.left)) and truthy(self.eval(node.right))
        if node.operator == "or":
            return truthy(self.eval(node.left)) or truthy(self.eval(node.right))
        left, right = self.eval(node.left), self.eval(node.right)
        if node.operator == "==":
            return _equal(left, right)
        if node.operator == "!=":
            return not _equal(left, right)
        if left is None or right is None:
            return None if node.operator in _ARITHMETIC else False
        if node.operator in _ORDERING:
            return _order(node, left, right)
        a = _number(left, node.operator, node.left.position)
        b = _number(right, node.operator, node.right.position)
        operations = {
            "+": NUMBER_CONTEXT.add,
            "-": NUMBER_CONTEXT.subtract,
            "*": NUMBER_CONTEXT.multiply,
            "/": NUMBER_CONTEXT.divide,
            "%": NUMBER_CONTEXT.remainder,
        }
        result: Decimal = operations[node.operator](a, b)
        return result

    def call(self, node: Call) -> Any:
        if node.name == "if":
            condition, when_true, when_false = node.args
            return self.eval(when_true if truthy(self.eval(condition)) else when_false)
        if node.name == "field":
            (arg,) = node.args
            assert isinstance(arg, Literal)
            return to_value(self.scope.lookup(str(arg.value)))
        function = FUNCTIONS[node.name]
        args = [self.eval(arg) for arg in node.args]
        for index, (arg, value) in enumerate(zip(node.args, args, strict=True)):
            check_argument(node.name, index, value, arg.position)
        result = function.run(args, node.position)
        if isinstance(result, str):
            checked_string(result, node.position)
        if isinstance(result, Decimal):
            result = NUMBER_CONTEXT.plus(result)  # rounds to the context and traps an overflow
        return result


def _number(value: Any, operator: str, position: int) -> Decimal:
    if isinstance(value, Decimal) and not isinstance(value, bool):
        return value
    raise ExpressionError(f"{operator!r} needs numbers, not {value_type(value)}", position)


def _equal(left: Any, right: Any) -> bool:
    if isinstance(left, bool) or isinstance(right, bool):
        return left is right
    return bool(left == right)


def _order(node: Binary, left: Any, right: Any) -> bool:
    kinds = {value_type(left), value_type(right)}
    if not (len(kinds) == 1 or kinds <= {DATE, DATETIME}) or not kinds <= _ORDERED_TYPES:
        raise ExpressionError(f"cannot compare {value_type(left)} with {value_type(right)}", node.position)
    if kinds == {DATE, DATETIME}:
        left, right = _day(left), _day(right)
    comparisons: dict[str, Callable[[Any, Any], bool]] = {
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }
    return comparisons[node.operator](left, right)


def _day(value: Any) -> date:
    return value.date() if hasattr(value, "date") and callable(value.date) else value  # type: ignore[no-any-return]


def _decimal_reason(exc: DecimalException) -> str:
    name = type(exc).__name__
    return {"Overflow": "the number is too large", "DivisionByZero": "division by zero"}.get(
        name, "the numbers cannot be combined"
    )

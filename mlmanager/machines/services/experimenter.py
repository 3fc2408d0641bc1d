"""The experimenter: rules that answer a model's predictions before it has a version.

The owner gives, per output, an expression over the model's inputs, in a small language read
by simpleeval (never Python's `eval`): numbers, texts, True/False/None, the inputs by name,
arithmetic (+ - * / // % **), comparisons (== != < <= > >=), and/or/not, `a if condition
else b`, and the functions min, max, abs and round. Nothing else: no attribute access, no
indexing, no other functions, no names other than the inputs. An input whose name is not a
Python identifier (`meta.city`) is written with every other character replaced by "_"
(`meta_city`). Expressions are at most MAX_RULE_LENGTH characters; powers are refused past
MAX_POWER_BITS bits, texts past simpleeval's MAX_STRING_LENGTH.

Every output of the model needs a rule (an integration gets the whole answer or none). Rules are
checked when set (400 `invalid_rule` naming the output and the problem) and run on each row
when predicting (400 `rule_failed`: a missing input, a type error, a division by zero). Once the
model has a version, the version answers and the rules are ignored.
"""

from __future__ import annotations

import ast
import keyword
import logging
import math
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

import simpleeval
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from mlmanager.accounts.caller import Caller
from mlmanager.audit.models import AuditAction
from mlmanager.audit.services import audit_record
from mlmanager.core.errors import ApplicationError, NotFound
from mlmanager.machines.models import Machine

logger = logging.getLogger(__name__)

MAX_RULE_LENGTH = 1_000
# 2**4096 is a 1 234-digit number: far past any prediction, quick to compute.
MAX_POWER_BITS = 4_096
MAX_ROUND_DIGITS = 15


class RuleProblem(Exception):
    """Why a rule cannot be set or could not answer a row, in words for the user."""


def _power(base: Any, exponent: Any) -> Any:
    if isinstance(base, int | float) and isinstance(exponent, int | float):
        size = abs(exponent) * math.log2(abs(base)) if abs(base) > 1 else 0
        if size > MAX_POWER_BITS:
            raise RuleProblem(_("The power is too large."))
    try:
        return simpleeval.safe_power(base, exponent)
    except simpleeval.NumberTooHigh:
        raise RuleProblem(_("The power is too large.")) from None


def _modulo(left: Any, right: Any) -> Any:
    if isinstance(left, str):  # "%0999999d" % 1 would write a text of a million characters
        raise RuleProblem(_("% works on numbers only."))
    return operator.mod(left, right)


def _round(value: Any, digits: Any = None) -> Any:
    if digits is None:
        return round(value)
    if not isinstance(digits, int) or isinstance(digits, bool) or abs(digits) > MAX_ROUND_DIGITS:
        raise RuleProblem(_("round() takes a whole number of digits up to 15."))
    return round(value, digits)


def _number_function(function: Callable[..., Any]) -> Callable[..., Any]:
    def checked(*values: Any) -> Any:
        if not values or len(values) > 100:
            raise RuleProblem(_("%(name)s() needs between 1 and 100 values.") % {"name": name})
        return function(*values)

    name = function.__name__
    return checked


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "min": _number_function(min),
    "max": _number_function(max),
    "abs": abs,
    "round": _round,
}
CONSTANTS = {"True": True, "False": False, "None": None}
OPERATORS: dict[type, Callable[..., Any]] = {
    ast.Add: simpleeval.safe_add,
    ast.Sub: operator.sub,
    ast.Mult: simpleeval.safe_mult,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: _modulo,
    ast.Pow: _power,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Gt: operator.gt,
    ast.Lt: operator.lt,
    ast.GtE: operator.ge,
    ast.LtE: operator.le,
    ast.Not: operator.not_,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
_ALLOWED_NODES = (
    ast.Expression,
    ast.BinOp,
    ast.UnaryOp,
    ast.BoolOp,
    ast.Compare,
    ast.IfExp,
    ast.Call,
    ast.Name,
    ast.Load,
    ast.Constant,
    ast.And,
    ast.Or,
    *OPERATORS,
)


def rule_name(input_name: str) -> str:
    """How a rule names an input: the input's name where it is an identifier, else with every
    other character replaced by "_" (and "_" first where it starts with a digit)."""
    name = re.sub(r"\W", "_", input_name)
    if not name or name[0].isdigit() or keyword.iskeyword(name):
        name = "_" + name
    return name


def rule_names(inputs: list[str]) -> dict[str, str]:
    """Rule name -> input name (the first input wins where two would share a name)."""
    names: dict[str, str] = {}
    for input_name in inputs:
        names.setdefault(rule_name(input_name), input_name)
    return names


def check_rule(expression: Any, names: Mapping[str, str]) -> ast.Expression:
    """The parsed rule, or RuleProblem saying what is wrong with it."""
    if not isinstance(expression, str) or not expression.strip():
        raise RuleProblem(_("A rule is an expression, as text."))
    if len(expression) > MAX_RULE_LENGTH:
        raise RuleProblem(
            _("A rule is at most %(limit)s characters long.") % {"limit": MAX_RULE_LENGTH}
        )
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise RuleProblem(_("This is not a valid expression.")) from None
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            raise RuleProblem(
                _("“%(what)s” is not allowed in a rule.")
                % {"what": ast.get_source_segment(expression.strip(), node) or type(node).__name__}
            )
        if (
            isinstance(node, ast.Name)
            and node.id not in names
            and node.id not in CONSTANTS
            and node.id not in FUNCTIONS
        ):
            raise RuleProblem(_("“%(name)s” is not an input of this model.") % {"name": node.id})
        if isinstance(node, ast.Call) and (
            not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS or node.keywords
        ):
            raise RuleProblem(
                _("Only these functions can be called: %(names)s.")
                % {"names": ", ".join(FUNCTIONS)}
            )
        # A function only as the thing called, never as a value.
        if (
            isinstance(node, ast.Name)
            and node.id in FUNCTIONS
            and not any(
                isinstance(parent, ast.Call) and parent.func is node for parent in ast.walk(tree)
            )
        ):
            raise RuleProblem(_("“%(name)s” is a function: call it.") % {"name": node.id})
        if isinstance(node, ast.Constant) and not isinstance(
            node.value, int | float | str | bool | type(None)
        ):
            raise RuleProblem(_("Only numbers and texts can be written in a rule."))
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and len(node.value) > MAX_RULE_LENGTH
        ):
            raise RuleProblem(_("This text is too long."))
    return tree


def _evaluator(values: dict[str, Any]) -> simpleeval.SimpleEval:
    evaluator = simpleeval.SimpleEval(operators=OPERATORS, functions=FUNCTIONS, names=values)
    # Defence in depth: the checked rules hold none of these, and simpleeval refuses them too.
    for node in (ast.Attribute, ast.Subscript, ast.Assign, ast.AugAssign, ast.Import):
        evaluator.nodes.pop(node, None)
    return evaluator


@transaction.atomic
def experimenter_set(*, caller: Caller, machine: Machine, rules: Any) -> Machine:
    """Give the model rules (output -> expression), replacing any it had; 400 `invalid_rule`
    naming the output and the problem when a rule cannot be used."""
    if not isinstance(rules, dict) or not rules:
        raise ApplicationError(
            _("Send “rules”: an object with an expression per output."), code="invalid_rule"
        )
    outputs = machine.output_names
    unknown = sorted(str(name) for name in set(rules) - set(outputs))
    if unknown:
        raise _invalid_rule(
            unknown[0], _("The model has no output “%(name)s”.") % {"name": unknown[0]}
        )
    missing = [name for name in outputs if name not in rules]
    if missing:
        raise _invalid_rule(missing[0], _("Every output needs a rule."))
    names = rule_names(list(machine.inputs))
    for output in outputs:
        try:
            check_rule(rules[output], names)
        except RuleProblem as problem:
            raise _invalid_rule(output, str(problem)) from None
    clean = {output: rules[output].strip() for output in outputs}
    machine = Machine.objects.select_for_update().get(pk=machine.pk)
    _rules_save(
        caller=caller, machine=machine, rules=clean, action=AuditAction.MODEL_EXPERIMENTER_SET
    )
    logger.info("model %s: experimenter rules set", machine.pk)
    return machine


@transaction.atomic
def experimenter_delete(*, caller: Caller, machine: Machine) -> None:
    """Remove the model's rules; 404 when it has none."""
    machine = Machine.objects.select_for_update().get(pk=machine.pk)
    if not machine.experimenter_rules:
        raise NotFound(_("This model has no experimenter rules."), code="no_rules")
    _rules_save(
        caller=caller, machine=machine, rules={}, action=AuditAction.MODEL_EXPERIMENTER_DELETED
    )


def machine_for_rules(*, machine_id: int) -> Machine:
    """The model with its rules, inputs, outputs and dataset, read fresh (the predict path
    holds a model of a few columns only)."""
    return Machine.objects.select_related("dataset").get(pk=machine_id)


def answers_by_rules(
    *, rules: Mapping[str, str], inputs: list[str], rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Each row's value per output (rows map input names to values; None or NaN: missing);
    400 `rule_failed` with the row, the output and the reason at the first rule that fails."""
    names = rule_names(inputs)
    parsed = {output: check_rule(expression, names) for output, expression in rules.items()}
    answers = []
    for index, row in enumerate(rows):
        values = {
            rule: row.get(input_name)
            for rule, input_name in names.items()
            if not _missing(row.get(input_name))
        }
        evaluator = _evaluator(values)
        answer = {}
        for output, tree in parsed.items():
            answer[output] = _run(evaluator, tree, output=output, row=index, names=names)
        answers.append(answer)
    return answers


def _run(
    evaluator: simpleeval.SimpleEval,
    tree: ast.Expression,
    *,
    output: str,
    row: int,
    names: Mapping[str, str],
) -> Any:
    try:
        value = evaluator.eval("", previously_parsed=tree.body)
    except simpleeval.NameNotDefined as error:
        reason = _("the input “%(name)s” is missing") % {"name": names.get(error.name, error.name)}
    except ZeroDivisionError:
        reason = _("division by zero")
    except (TypeError, ValueError):
        reason = _("a value of the wrong type (a text where a number is needed, or the like)")
    except RuleProblem as problem:
        reason = str(problem)
    except simpleeval.IterableTooLong:
        reason = _("the text is too long")
    except (simpleeval.InvalidExpression, OverflowError, ArithmeticError, RecursionError):
        reason = _("the result is out of range")
    else:
        if isinstance(value, bool | str) or (
            isinstance(value, int | float) and math.isfinite(value)
        ):
            return value
        reason = _("it gave no number or text")
    raise ApplicationError(
        _("Row %(row)s: the rule of “%(output)s” failed: %(reason)s.")
        % {"row": row, "output": output, "reason": reason},
        code="rule_failed",
        details={"row": row, "output": output, "reason": reason},
    )


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _invalid_rule(output: str, problem: str) -> ApplicationError:
    return ApplicationError(
        _("The rule of “%(output)s” cannot be used: %(problem)s")
        % {"output": output, "problem": problem},
        code="invalid_rule",
        details={"output": output, "problem": problem},
    )


def _rules_save(*, caller: Caller, machine: Machine, rules: dict[str, str], action: str) -> None:
    """Store `rules` on the (locked) model with who and when, and audit the change."""
    before = dict(machine.experimenter_rules)
    machine.experimenter_rules = rules
    machine.experimenter_updated_by = caller.user
    machine.experimenter_updated_at = timezone.now()
    machine.save(
        update_fields=[
            "experimenter_rules",
            "experimenter_updated_by",
            "experimenter_updated_at",
            "updated_at",
        ]
    )
    audit_record(
        caller=caller,
        team=machine.team,
        action=action,
        target=machine,
        changes={"rules": (before, rules)},
    )

"""Personalised routing rules: the SpEL subset of seed-06 §3.4, and weighted version selection.

A condition compares one variable with a literal:

    #DOMAIN_NAME == 'zhangsan'            equality (also !=)
    #HEADER_testheader matches 'mock.*'   full-string regular expression
    #HEADER_uid.hashCode() % 100 < 10     Java String.hashCode(), then % and a comparison

and conditions combine with `and` / `or` (also `&&` / `||`; `and` binds tighter). Variables:
`#USER_NAME`/`#USER_ID` (the caller), `#DOMAIN_NAME`/`#DOMAIN_ID` (the caller's account, which
in Atelier is the same user), `#PROJECT_NAME`/`#PROJECT_ID` (the service's workspace) and
`#HEADER_<name>` (a request header, case-insensitive). A variable that has no value (an absent
header) makes its comparison false. `hashCode` is Java's: 32-bit signed `s[0]*31^(n-1)+…`, and
`%` keeps the dividend's sign, as in Java.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

VARIABLES = {"DOMAIN_NAME", "DOMAIN_ID", "PROJECT_NAME", "PROJECT_ID", "USER_NAME", "USER_ID"}
MAX_RULES = 10
MAX_HEADER_NAME = 128
MAX_HEADER_VALUE = 256

TOKEN_RE = re.compile(r"""
    \s*(?:
      (?P<var>\#[A-Za-z_][A-Za-z0-9_-]*)
    | (?P<hash>\.hashCode\(\))
    | (?P<str>'(?:[^'\\]|\\.)*')
    | (?P<num>-?\d+)
    | (?P<op>==|!=|<=|>=|<|>|%|&&|\|\||\(|\))
    | (?P<word>matches|and|or)\b
    )""", re.VERBOSE)


class RuleError(ValueError):
    """The condition does not parse; the message points at the problem."""


def java_hash(text: str) -> int:
    """Java's String.hashCode over UTF-16 code units, as a signed 32-bit integer."""
    value = 0
    data = text.encode("utf-16-be")
    for i in range(0, len(data), 2):
        value = (31 * value + ((data[i] << 8) | data[i + 1])) & 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def java_mod(a: int, b: int) -> int:
    """Java's % : the result takes the dividend's sign."""
    result = abs(a) % abs(b)
    return -result if a < 0 else result


@dataclass(frozen=True)
class Comparison:
    variable: str  # "USER_NAME" or "HEADER_<name>"
    hashed: bool
    modulo: int | None
    op: str
    literal: object  # str or int

    def evaluate(self, variables: dict[str, str]) -> bool:
        value = variables.get(self.variable.lower() if self.variable.startswith("HEADER_") else self.variable)
        if value is None:
            return False
        if self.hashed:
            number = java_hash(value)
            if self.modulo is not None:
                number = java_mod(number, self.modulo)
            left: object = number
        else:
            left = value
        right = self.literal
        if self.op == "matches":
            return re.fullmatch(str(right), str(left)) is not None
        if isinstance(left, int) and isinstance(right, str):
            return False
        if isinstance(left, str) and isinstance(right, int):
            right = str(right)
        if self.op == "==":
            return left == right
        if self.op == "!=":
            return left != right
        if not isinstance(left, int) or not isinstance(right, int):
            return False
        return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[self.op]


class Condition:
    """A parsed condition: an or-list of and-lists of comparisons."""

    def __init__(self, text: str):
        self.text = text
        self.groups = self._parse(text)

    def matches(self, variables: dict[str, str]) -> bool:
        return any(all(c.evaluate(variables) for c in group) for group in self.groups)

    @staticmethod
    def _tokens(text: str) -> list[tuple[str, str]]:
        tokens, pos = [], 0
        text = text.rstrip()
        while pos < len(text):
            match = TOKEN_RE.match(text, pos)
            if not match or match.end() == pos:
                raise RuleError(f"unexpected text at position {pos + 1}: {text[pos:pos + 12]!r}")
            kind = match.lastgroup
            tokens.append((kind, match.group(kind)))
            pos = match.end()
        return tokens

    def _parse(self, text: str) -> list[list[Comparison]]:
        if not text or not text.strip():
            raise RuleError("the condition is empty")
        tokens = self._tokens(text)
        groups: list[list[Comparison]] = [[]]
        i = 0
        while i < len(tokens):
            comparison, i = self._comparison(tokens, i)
            groups[-1].append(comparison)
            if i == len(tokens):
                break
            kind, value = tokens[i]
            if value in ("and", "&&"):
                i += 1
            elif value in ("or", "||"):
                groups.append([])
                i += 1
            else:
                raise RuleError(f"expected and/or after a comparison, found {value!r}")
            if i == len(tokens):
                raise RuleError("the condition ends with and/or")
        return groups

    @staticmethod
    def _comparison(tokens, i) -> tuple[Comparison, int]:
        def take(expected: str | None = None):
            nonlocal i
            if i >= len(tokens):
                raise RuleError("the condition ends too early")
            token = tokens[i]
            if expected and token[0] != expected:
                raise RuleError(f"expected {expected} but found {token[1]!r}")
            i += 1
            return token

        _kind, var = take("var")
        name = var[1:]
        if not name.startswith("HEADER_") and name not in VARIABLES:
            raise RuleError(f"unknown variable #{name}; use #HEADER_<name> or one of "
                            f"{', '.join('#' + v for v in sorted(VARIABLES))}")
        if name.startswith("HEADER_") and len(name) == len("HEADER_"):
            raise RuleError("#HEADER_ needs a header name, e.g. #HEADER_uid")
        hashed, modulo = False, None
        if i < len(tokens) and tokens[i][0] == "hash":
            take()
            hashed = True
            if i < len(tokens) and tokens[i][1] == "%":
                take()
                _k, number = take("num")
                modulo = int(number)
                if modulo == 0:
                    raise RuleError("% 0 divides by zero")
        kind, op = take()
        if op not in ("==", "!=", "<", "<=", ">", ">=", "matches"):
            raise RuleError(f"expected ==, !=, <, <=, >, >= or matches after #{name}, found {op!r}")
        kind, literal = take()
        if kind == "str":
            value: object = re.sub(r"\\(.)", r"\1", literal[1:-1])
        elif kind == "num":
            value = int(literal)
        else:
            raise RuleError(f"expected a quoted string or a number, found {literal!r}")
        if op == "matches":
            if not isinstance(value, str):
                raise RuleError("matches takes a quoted regular expression")
            try:
                re.compile(value)
            except re.error as exc:
                raise RuleError(f"the regular expression is invalid: {exc}") from None
        elif op in ("<", "<=", ">", ">=") and not (hashed and isinstance(value, int)):
            raise RuleError(f"{op} compares numbers: use it after .hashCode()")
        header = "HEADER_" + name[len("HEADER_"):].lower() if name.startswith("HEADER_") else name
        return Comparison(header, hashed, modulo, op, value), i


def variables_for(*, user_id, username: str, workspace_id, workspace_name: str, headers: dict[str, str]) -> dict:
    """The rule variables of one request; header names lower-cased."""
    values = {"USER_NAME": username, "USER_ID": str(user_id), "DOMAIN_NAME": username, "DOMAIN_ID": str(user_id),
              "PROJECT_NAME": workspace_name, "PROJECT_ID": str(workspace_id)}
    for name, value in headers.items():
        values[f"header_{name.lower()}"] = value
    return values


class WeightedPicker:
    """Smooth weighted round-robin (nginx): exact proportions over every sum-of-weights picks."""

    def __init__(self, weights: dict[object, int]):
        self.weights = {key: w for key, w in weights.items() if w > 0}
        self.current = dict.fromkeys(self.weights, 0)
        self.total = sum(self.weights.values())

    def pick(self):
        if not self.weights:
            return None
        best = None
        for key, weight in self.weights.items():
            self.current[key] += weight
            if best is None or self.current[key] > self.current[best]:
                best = key
        self.current[best] -= self.total
        return best

"""The traps of a hand-written spec: plain YAML scalars that do not read the way they look.

Specs are read with PyYAML, a YAML 1.1 reader: an unquoted `NO` (Norway, in a vocabulary) or `off` (an action)
is a boolean, a key `on:` is `True`, `0755` is the octal number 493, `1:30` is 90 (base 60), `2026-01-01` is a
date, and `1e3` is text, not a number. When the spec then breaks a rule, pydantic's error alone ("Input should
be a valid string" at `context.1.[key]`) hides the cause; `explain` names the line, the scalar, what YAML made
of it and the fix. `oddities` finds what parses silently but probably means something else (`seed: 0755`, a
key given twice), for `make check-spec`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_TAG = "tag:yaml.org,2002:"
_READ_AS = {"bool": "the boolean", "null": "null", "int": "the number", "float": "the number",
            "timestamp": "the date"}  # fmt: skip
# pydantic error types that mean text was expected (all of the spec's Literals are text).
_WANTS_TEXT = ("string_type", "literal_error", "invalid_key")
_WANTS_NUMBER = ("int_parsing", "float_parsing", "int_type", "float_type")
# Numbers YAML 1.2 readers take and PyYAML leaves as text: its floats need a dot and a signed exponent (1.0e+3).
_NUMBER_AS_TEXT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")
_OCTAL = re.compile(r"^[-+]?0[0-7]+$")


def _plain(node: Node, kind: str) -> bool:
    return isinstance(node, ScalarNode) and node.style is None and node.tag == _TAG + kind


def _walk(node: Node, path: str = "top level") -> Iterator[tuple[str, Node]]:
    """(path as the file spells it, node) of `node` and every node under it."""
    yield path, node
    if isinstance(node, MappingNode):
        for key, value in node.value:
            yield from _walk(value, str(key.value) if path == "top level" else f"{path}.{key.value}")
    elif isinstance(node, SequenceNode):
        for index, value in enumerate(node.value):
            yield from _walk(value, f"{path}.{index}")


def _key_value(loader: yaml.SafeLoader, key: Node) -> object:
    try:
        return loader.construct_object(key) if isinstance(key, ScalarNode) else None
    except yaml.YAMLError:  # `<<` and other tags no plain constructor knows
        return None


def _at(loader: yaml.SafeLoader, root: Node, loc: tuple, wants_key: bool) -> tuple[str, Node] | None:
    """The node a pydantic error location points at (the key's node for a key error), with its path."""
    node, key, path = root, None, ""
    for part in loc:
        if part == "[key]":
            return (path, key) if key is not None else None
        if isinstance(node, MappingNode):
            found = [(k, v) for k, v in node.value if _key_value(loader, k) == part]
            if found:  # else a discriminated union's tag (`category`): in the location, not in the file
                key, node = found[0]
                path = f"{path}.{key.value}" if path else str(key.value)
        elif isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node, key, path = node.value[part], None, f"{path}.{part}"
        else:
            return None
    target = key if wants_key else node
    return (path, target) if target is not None else None


def _not_text(loader: yaml.SafeLoader, path: str, node: Node) -> str | None:
    kind = next((k for k in _READ_AS if _plain(node, k)), None)
    if kind is None:
        return None
    where = f"line {node.start_mark.line + 1} ({path})"
    if not node.value:
        return f"{where}: an empty value is null to YAML, not text (write the text)"
    shown = "" if kind == "null" else f" {loader.construct_object(node)}"
    read = f"YAML 1.1 reads the unquoted {node.value} as {_READ_AS[kind]}{shown}"
    return f"{where}: {read}, not as text (quote it: '{node.value}')"


def _text_not_number(path: str, node: Node) -> str | None:
    if not (_plain(node, "str") and _NUMBER_AS_TEXT.match(node.value)):
        return None
    number = float(node.value)
    written = int(number) if number.is_integer() else number
    read = f"YAML 1.1 reads the unquoted {node.value} as text"
    return f"line {node.start_mark.line + 1} ({path}): {read}, not as a number (write {written})"


def explain(text: str, errors: list[dict]) -> list[str]:
    """For each pydantic error at a scalar YAML did not read as written: the line, what it read and the fix."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        hints = []
        for error in errors:
            found = root and _at(loader, root, tuple(error["loc"]), error["type"] == "invalid_key")
            if not found:
                continue
            if error["type"] in _WANTS_TEXT:
                hint = _not_text(loader, *found)
            elif error["type"] in _WANTS_NUMBER:
                hint = _text_not_number(*found)
            else:
                hint = None
            if hint and hint not in hints:
                hints.append(hint)
        return hints
    finally:
        loader.dispose()


def oddities(text: str) -> list[str]:
    """What a valid spec's YAML says that its writer probably did not mean: octal and base-60 numbers, and keys
    given twice in one mapping (YAML keeps the last, silently)."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        found = []
        for path, node in _walk(root) if root else ():
            line = f"line {node.start_mark.line + 1} ({path})"
            digits = node.value.replace("_", "") if isinstance(node, ScalarNode) else ""
            if _plain(node, "int") and _OCTAL.match(digits):
                found.append(f"{line}: YAML 1.1 reads {node.value} as the octal number "
                             f"{loader.construct_object(node)}; write {int(digits)} if you meant that")  # fmt: skip
            elif (_plain(node, "int") or _plain(node, "float")) and ":" in node.value:
                found.append(f"{line}: YAML 1.1 reads {node.value} as the base-60 number "
                             f"{loader.construct_object(node)}; quote it or write the number you mean")  # fmt: skip
            if isinstance(node, MappingNode):
                keys = [key.value for key, _ in node.value if isinstance(key, ScalarNode)]
                found += [f"{line}: the key '{key}' is given {keys.count(key)} times; YAML keeps only the last"
                          for key in dict.fromkeys(keys) if keys.count(key) > 1]  # fmt: skip
        return found
    finally:
        loader.dispose()

"""Safe YAML loading that remembers where every value came from.

Errors about a workflow must say ``FILE:LINE:COL``, in syntax and in meaning alike, so the loader
keeps the position of every node by its path (``("transitions", 2, "dest")``). Only PyYAML's safe
constructors build values: no tags, no Python objects. Duplicate keys, which PyYAML would silently
overwrite, are errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

Path_ = tuple[str | int, ...]


@dataclass
class Located:
    """A parsed document and the (line, column) of each value and mapping key, 1-based."""

    file: str
    data: Any
    marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)

    def where(self, path: Path_, *, key: bool = False) -> str:
        """``FILE:LINE:COL`` of the deepest known node on ``path``."""
        table = self.key_marks if key else self.marks
        probe = tuple(path)
        while probe:
            if probe in table:
                line, col = table[probe]
                return f"{self.file}:{line}:{col}"
            if probe in self.marks:
                line, col = self.marks[probe]
                return f"{self.file}:{line}:{col}"
            probe = probe[:-1]
        line, col = self.marks.get((), (1, 1))
        return f"{self.file}:{line}:{col}"


class YamlSyntaxError(Exception):
    def __init__(self, location: str, message: str):
        super().__init__(f"{location}: {message}")
        self.location = location
        self.message = message


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


# Limits on what a YAML file may make us build: a few hundred lines are a workflow; more is a
# mistake or an attack (an alias "billion laughs" of 340 bytes expands to gigabytes).
MAX_BYTES = 1_000_000
MAX_DEPTH = 30
MAX_VALUES = 100_000  # values after expanding aliases
MAX_SCALAR = 20_000  # characters in one value


class _Budget:
    def __init__(self) -> None:
        self.values = 0


def load_located(text: str, file: str) -> Located:
    if len(text) > MAX_BYTES:
        raise YamlSyntaxError(f"{file}:1:1", f"the file is too large ({len(text):,} characters; at most {MAX_BYTES:,})")
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:
        raise YamlSyntaxError(f"{file}:1:1", f"YAML nested too deeply (at most {MAX_DEPTH} levels)") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark else f"{file}:1:1"
        raise YamlSyntaxError(where, f"YAML syntax error: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(f"{file}:1:1", f"YAML error: {exc}") from None
    doc = Located(file=file, data=None)
    if root is None:
        doc.data = {}
        return doc
    constructor = SafeConstructor()
    try:
        doc.data = _build(root, (), doc, constructor, _Budget())
    except RecursionError:
        raise YamlSyntaxError(f"{file}:1:1", f"YAML nested too deeply (at most {MAX_DEPTH} levels)") from None
    return doc


_PLAIN_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}


def _build(node: yaml.Node, path: Path_, doc: Located, constructor: SafeConstructor, budget: _Budget) -> Any:
    budget.values += 1
    if budget.values > MAX_VALUES or len(path) > MAX_DEPTH:
        line, col = _mark(node)
        what = (f"nested deeper than {MAX_DEPTH} levels" if len(path) > MAX_DEPTH
                else f"more than {MAX_VALUES:,} values (aliases expanding?)")
        raise YamlSyntaxError(f"{doc.file}:{line}:{col}", f"the document is {what}")
    doc.marks[path] = _mark(node)
    if not isinstance(node, yaml.ScalarNode) and node.tag not in _PLAIN_TAGS:
        line, col = _mark(node)
        raise YamlSyntaxError(f"{doc.file}:{line}:{col}", f"YAML tag {node.tag!r} is not allowed")
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise YamlSyntaxError(
                    f"{doc.file}:{_mark(key_node)[0]}:{_mark(key_node)[1]}",
                    "merge keys (<<) are not supported in workflows",
                )
            key = constructor.construct_object(key_node)
            if not isinstance(key, (str, int)):
                line, col = _mark(key_node)
                raise YamlSyntaxError(f"{doc.file}:{line}:{col}", "mapping keys must be plain text")
            if key in out:
                line, col = _mark(key_node)
                first = doc.key_marks[(*path, key)]
                raise YamlSyntaxError(
                    f"{doc.file}:{line}:{col}", f"duplicate key {key!r} (first at line {first[0]})"
                )
            doc.key_marks[(*path, key)] = _mark(key_node)
            out[key] = _build(value_node, (*path, key), doc, constructor, budget)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), doc, constructor, budget) for i, item in enumerate(node.value)]
    if len(node.value) > MAX_SCALAR:
        line, col = _mark(node)
        raise YamlSyntaxError(f"{doc.file}:{line}:{col}", f"a value of {len(node.value):,} characters (at most {MAX_SCALAR:,})")
    try:
        return constructor.construct_object(node)
    except yaml.constructor.ConstructorError as exc:
        line, col = _mark(node)
        raise YamlSyntaxError(f"{doc.file}:{line}:{col}", f"YAML error: {exc.problem}") from None
    except (ValueError, OverflowError) as exc:  # e.g. an integer of more than 4,300 digits
        line, col = _mark(node)
        raise YamlSyntaxError(f"{doc.file}:{line}:{col}", f"not a usable value: {exc}") from None

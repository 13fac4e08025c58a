"""kubectl's JSONPath templates (`-o jsonpath=...`), evaluated with jsonpath-ng.

kubectl's templates are text with `{...}` actions: a path (`{.status.phase}`), a quoted
string (`{"\\n"}`), or `{range PATH}...{end}`. Its paths differ from jsonpath-ng's in small
ways, which `translate_path` bridges: the leading `$` is optional, `\\.` escapes a dot in a
key (`.metadata.labels.kattle\\.dev/type`), keys may hold characters jsonpath-ng's lexer
does not take (`/`), and a union of quoted paths (`['metadata.name', 'status.phase']`) walks
each path. Parsing is pure and done before any request, so a bad template fails at once.

Values print as kubectl prints them: strings as they are, maps and lists as compact JSON
with sorted keys, several results of one action separated by spaces, missing keys as
nothing (kubectl's default `--allow-missing-template-keys`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError
from jsonpath_ng.ext.parser import parse as parse_jsonpath
from jsonpath_ng.jsonpath import JSONPath

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'"}
_QUOTED = r"""'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*\""""
_KEY_LIST = re.compile(rf"\s*(?:{_QUOTED})(?:\s*,\s*(?:{_QUOTED}))*\s*")


class TemplateError(ValueError):
    """A template kubectl would refuse too; the message says where."""


@dataclass(frozen=True)
class Text:
    value: str


@dataclass(frozen=True)
class Path:
    """A path; a union has one expression for each of its paths, found in turn."""

    compiled: tuple[JSONPath, ...]


@dataclass(frozen=True)
class Range:
    path: Path
    body: tuple[Node, ...]


Node = Text | Path | Range


def parse_template(template: str) -> tuple[Node, ...]:
    """The template's text, paths and ranges; TemplateError as kubectl words its errors."""
    stack: list[tuple[Path | None, list[Node]]] = [(None, [])]
    for is_action, chunk in _chunks(template):
        nodes = stack[-1][1]
        if not is_action:
            nodes.append(Text(chunk))
        elif chunk == "end":
            if len(stack) == 1:
                raise TemplateError("not in range, nothing to end")
            path, body = stack.pop()
            assert path is not None
            stack[-1][1].append(Range(path, tuple(body)))
        elif chunk.startswith("range ") or chunk.startswith("range\t"):
            stack.append((_path(chunk[6:]), []))
        elif chunk[:1] in ('"', "'"):
            nodes.append(Text(_unquote(chunk)))
        else:
            nodes.append(_path(chunk))
    # kubectl prints a range left open as if it ended with the template.
    while len(stack) > 1:
        path, body = stack.pop()
        assert path is not None
        stack[-1][1].append(Range(path, tuple(body)))
    return tuple(stack[0][1])


def _chunks(template: str) -> list[tuple[bool, str]]:
    """(is an action, text) pieces: `{...}` actions, stripped, and the text between them."""
    chunks: list[tuple[bool, str]] = []
    index = 0
    while index < len(template):
        start = template.find("{", index)
        if start < 0:
            chunks.append((False, template[index:]))
            break
        if start > index:
            chunks.append((False, template[index:start]))
        end = _closing(template, start)
        chunks.append((True, template[start + 1 : end].strip()))
        index = end + 1
    return chunks


def _closing(template: str, start: int) -> int:
    """The index of the `}` that closes the action at `start`; quotes may hold braces."""
    quote = ""
    index = start + 1
    while index < len(template):
        char = template[index]
        if quote:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "}":
            return index
        index += 1
    raise TemplateError("unclosed action")


def _unquote(text: str) -> str:
    if len(text) < 2 or text[-1] != text[0]:
        raise TemplateError("unterminated quoted string")
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(0)), text[1:-1])


def _path(text: str) -> Path:
    try:
        return Path(tuple(parse_jsonpath(e) for e in translate_path(text)))
    except (JsonPathLexerError, JsonPathParserError, ValueError) as error:
        raise TemplateError(f"{text.strip()}: {error}".splitlines()[0]) from None


def translate_path(text: str) -> tuple[str, ...]:
    """kubectl's path (`.items[*].metadata.name`) as jsonpath-ng's (`$.items[*].metadata.name`):
    one expression, or one for each path of a union, whose results kubectl prints in turn.

    Pure, so each documented form is tested by itself."""
    path = text.strip()
    if path in ("@", "$", ""):
        return ("$",)
    if path[0] in "@$":
        path = path[1:]
    if path[0] not in ".[":
        raise TemplateError(f"unrecognized identifier {path.split('.')[0].split('[')[0]}")
    alternatives = ["$"]
    index = 0
    while index < len(path):
        segments, index = _segment(path, index)
        alternatives = [alt + segment for alt in alternatives for segment in segments]
    return tuple(alternatives)


def _segment(path: str, index: int) -> tuple[list[str], int]:
    """The jsonpath-ng forms of the step at `index` (several for a union), and where the
    next step starts."""
    if path.startswith("..", index):
        key, end = _key(path, index + 2)
        return [f"..{_quoted(key)}"], end
    if path[index] == ".":
        key, end = _key(path, index + 1)
        return ([""] if not key else [f".{_quoted(key)}"]), end
    if path[index] == "[":
        end = _closing_bracket(path, index)
        return _bracket(path[index + 1 : end]), end + 1
    raise TemplateError(f"unrecognized character in action: {path[index:]}")


def _key(path: str, index: int) -> tuple[str, int]:
    """A key up to the next unescaped `.` or `[`, with kubectl's `\\.` unescaped."""
    key = []
    while index < len(path) and path[index] not in ".[":
        if path[index].isspace():
            raise TemplateError(f"unrecognized identifier {path[index:].split()[0]}")
        if path[index] == "\\" and index + 1 < len(path):
            index += 1
        key.append(path[index])
        index += 1
    return "".join(key), index


def _quoted(key: str) -> str:
    # Quoted always: jsonpath-ng's lexer takes neither `/` nor its own keywords as keys.
    if key == "*":
        return key
    return "'" + key.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _closing_bracket(path: str, start: int) -> int:
    depth, quote = 0, ""
    for index in range(start, len(path)):
        char = path[index]
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
            if depth == 0:
                return index
    raise TemplateError("unterminated array")


def _bracket(content: str) -> list[str]:
    """`[...]`: an index, slice, `*` or filter as it is; quoted keys as steps, and a union of
    quoted paths as one alternative each (kubectl walks each path of a union)."""
    if not _KEY_LIST.fullmatch(content):
        return [f"[{content}]"]
    keys = [_unquote(q) for q in re.findall(_QUOTED, content)]
    return [path[1:] for key in keys for path in translate_path("." + key)]


def render(nodes: tuple[Node, ...], data: Any) -> str:
    """The template's output for `data`, as kubectl prints it."""
    out: list[str] = []
    for node in nodes:
        if isinstance(node, Text):
            out.append(node.value)
        elif isinstance(node, Path):
            out.append(" ".join(format_value(v) for v in _find(node, data)))
        else:
            # Paths in the body start from each match, as `@` and `$` do there in kubectl.
            out += [render(node.body, item) for item in _find(node.path, data)]
    return "".join(out)


def _find(path: Path, data: Any) -> list[Any]:
    return [match.value for expression in path.compiled for match in expression.find(data)]


def format_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return str(value)

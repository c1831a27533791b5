"""Read the YAML a user hands us (space files, policy files, ``--set`` values) in bounded time
and memory, with one-line errors that name the file.

``yaml.safe_load`` alone is not enough: a 1.6 KB file of nested aliases (a "billion laughs")
composes into a small graph that expands into billions of values as soon as anything walks it
(pydantic validation, an error message showing the value). Here a document is composed first,
its expanded size and depth are counted on the node graph, and only then is it constructed.

Also read as YAML 1.2 does: ``1e-3`` is a float (PyYAML's YAML 1.1 rules make it a text, which
a strict number field would then refuse).
"""

from __future__ import annotations

import os
import re
import reprlib
import stat
from pathlib import Path
from typing import Any

import yaml

#: Largest file read (space and policy files are a few hundred bytes).
MAX_FILE_BYTES = 256 * 1024
#: Most values a document may hold once its aliases are expanded.
MAX_VALUES = 10_000
#: Deepest nesting of mappings and sequences.
MAX_DEPTH = 32
#: Longest text shown for one value, and for a whole message.
VALUE_CHARS = 80
MESSAGE_CHARS = 400

_REPR = reprlib.Repr()  # keyword arguments need Python 3.12
_REPR.maxlevel, _REPR.maxdict, _REPR.maxlist, _REPR.maxtuple, _REPR.maxset = 3, 6, 6, 6, 6
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = VALUE_CHARS


class YamlFileError(ValueError):
    """A YAML file or text cannot be read; the message names the source."""


def shorten(value: Any) -> str:
    """A bounded ``repr`` of any value (long texts and big nested data are cut with ``...``)."""
    return _REPR.repr(value)


def clip(text: str, limit: int = VALUE_CHARS) -> str:
    """``text`` cut to ``limit`` characters; newlines and other control characters escaped."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[: limit + 1])
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Loader(yaml.SafeLoader):
    """``SafeLoader`` that counts alias expansion before constructing anything."""

    def get_single_node(self) -> yaml.Node | None:
        node = super().get_single_node()
        if node is not None:
            _check_expansion(node)
        return node


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


class _TooBig(Exception):
    """Raised inside the loader; turned into a :class:`YamlFileError` naming the source."""


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _check_expansion(root: yaml.Node) -> None:
    """Raise :class:`_TooBig` when ``root`` expands to more than :data:`MAX_VALUES` values,
    nests deeper than :data:`MAX_DEPTH`, or contains itself. Iterative: no recursion limit."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, finished = stack.pop()
        key = id(node)
        if finished:
            open_nodes.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in _children(node))
            if sizes[key] > MAX_VALUES:
                raise _TooBig(f"more than {MAX_VALUES} values once YAML aliases expand")
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise _TooBig("a YAML alias refers to the node that contains it")
        if depth > MAX_DEPTH:
            raise _TooBig(f"nested deeper than {MAX_DEPTH} levels")
        open_nodes.add(key)
        stack.append((node, depth, True))
        stack.extend((child, depth + 1, False) for child in _children(node))


def load_yaml_text(text: str, source: str) -> Any:
    """Parse one YAML document; any problem is a :class:`YamlFileError` starting with ``source``.

    Args:
        text: the YAML text.
        source: how the message names it (a path, ``--set 'context=...'``).
    """
    where = clip(source)
    try:
        return yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader
    except _TooBig as error:
        raise YamlFileError(f"{where}: {error}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(error, "problem", None)
        detail = f": {clip(problem)}" if problem else ""
        raise YamlFileError(f"{where}: not valid YAML{line}{detail}") from None
    except RecursionError:
        raise YamlFileError(f"{where}: nested deeper than {MAX_DEPTH} levels") from None
    except (ValueError, OverflowError) as error:  # e.g. a 5,000-digit integer, a 13th month
        raise YamlFileError(f"{where}: unreadable value ({clip(str(error))})") from None


def read_text_file(path: str | Path, what: str, max_bytes: int = MAX_FILE_BYTES) -> str:
    """The UTF-8 text of a regular file of at most ``max_bytes``.

    Raises:
        YamlFileError: missing, a folder, not a regular file, unreadable, too large, binary or
            not UTF-8; the message names the path and ``what`` was expected.
    """
    where = clip(str(path))
    try:
        # O_NONBLOCK: a named pipe must not block the open; stat the open file, not the name.
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise YamlFileError(f"{where}: no such {what}") from None
    except OSError as error:
        raise YamlFileError(f"{where}: cannot read the {what} ({error.strerror})") from None
    except ValueError:  # a NUL byte in the path
        raise YamlFileError(f"{where}: not a valid file path") from None
    try:
        info = os.fstat(descriptor)
        if stat.S_ISDIR(info.st_mode):
            raise YamlFileError(f"{where}: is a folder, not a {what}")
        if not stat.S_ISREG(info.st_mode):
            raise YamlFileError(f"{where}: not a regular file (a {what} is expected)")
        if info.st_size > max_bytes:
            raise YamlFileError(
                f"{where}: {info.st_size} bytes, larger than a {what} may be ({max_bytes} bytes)"
            )
        with os.fdopen(os.dup(descriptor), "rb") as file:
            data = file.read(max_bytes + 1)
    except OSError as error:
        raise YamlFileError(f"{where}: cannot read the {what} ({error.strerror})") from None
    finally:
        os.close(descriptor)
    if len(data) > max_bytes:
        raise YamlFileError(f"{where}: larger than a {what} may be ({max_bytes} bytes)")
    if b"\x00" in data:
        raise YamlFileError(f"{where}: a binary file, not a {what}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise YamlFileError(f"{where}: not a text file (binary, or not UTF-8)") from None


def load_yaml_file(path: str | Path, what: str) -> Any:
    """Read and parse a small YAML file; every problem is one :class:`YamlFileError` line.

    Args:
        path: the file.
        what: what the file should be, for messages (``"space file"``, ``"policy file"``).
    """
    return load_yaml_text(read_text_file(path, what), str(path))

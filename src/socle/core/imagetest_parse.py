"""Read the `tests:` list of a catalog entry, recording every problem where it is.

Works on composed YAML nodes through the catalog's :class:`~socle.core.loader.Reader`,
so each problem points at `file:line:col`. A test with any problem is left out
of the result; the problems make the catalog unusable anyway.
"""

from __future__ import annotations

import difflib
import re
from typing import TYPE_CHECKING

import yaml

from socle.core.imagetest import Check, CommandCheck, FileCheck, FileType, ImageTest, MetadataCheck

if TYPE_CHECKING:
    from collections.abc import Callable

    from socle.core.nodes import Entries, Reader

# The keys of each kind of check; a test has exactly one of the first keys.
KIND_KEYS: dict[str, tuple[str, ...]] = {
    "command": (
        "command",
        "user",
        "exit_code",
        "stdout",
        "stderr",
        "stdout_absent",
        "stderr_absent",
    ),
    "file": ("file", "absent", "type", "mode", "owner"),
    "metadata": ("metadata",),
}
TEST_KEYS = ("name", "skip", *(key for keys in KIND_KEYS.values() for key in keys))
METADATA_KEYS = ("user", "workdir", "env", "exposed_ports", "entrypoint", "cmd", "labels")
MODE_RE = re.compile(r"^0?[0-7]{3,4}$")
PORT_RE = re.compile(r"^(?P<port>[0-9]{1,5})(?:/(?P<proto>tcp|udp|sctp))?$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_tests(reader: Reader, node: yaml.Node) -> tuple[ImageTest, ...]:
    """The tests declared under a `tests:` key; problems are recorded on `reader`."""
    if _is_null(node):
        return ()
    if not isinstance(node, yaml.SequenceNode):
        reader.error(node, "tests must be a list of tests, each with a `name`")
        return ()
    tests: list[ImageTest] = []
    first_line: dict[str, int] = {}
    for item in node.value:
        test = _test(reader, item)
        if test is None:
            continue
        if test.name in first_line:
            reader.error(
                item,
                f"test {test.name!r} is declared twice (first on line {first_line[test.name]})",
            )
            continue
        first_line[test.name] = reader.where(item).line
        tests.append(test)
    return tuple(tests)


def _test(reader: Reader, item: yaml.Node) -> ImageTest | None:
    before = len(reader.problems)
    entries = reader.mapping(item, "a test", TEST_KEYS)
    if not isinstance(item, yaml.MappingNode):
        return None
    if "name" not in entries:
        reader.error(item, "a test has no `name`")
        return None
    name = reader.scalar(entries["name"][1], "a test's name")
    if name is None:
        return None
    if not name.strip():
        reader.error(entries["name"][1], "a test's name is empty")
    what = f"test {name!r}"
    check = None if _skipped(reader, entries, what) else _check(reader, entries, item, what)
    if len(reader.problems) > before:
        return None
    return ImageTest(name, check, reader.where(item))


def _skipped(reader: Reader, entries: Entries, what: str) -> bool:
    if "skip" not in entries:
        return False
    skip = reader.boolean(entries["skip"][1], "skip")
    if skip is None:
        return True  # already a problem: do not pile "checks nothing" on it
    if not skip:
        return False
    extra = [key for key in entries if key not in ("name", "skip")]
    if extra:
        reader.error(
            entries[extra[0]][0],
            f"{what} is skipped: it takes only `name` and `skip`, not `{extra[0]}`",
        )
    return True


def _check(reader: Reader, entries: Entries, item: yaml.Node, what: str) -> Check | None:
    kinds = [kind for kind in KIND_KEYS if kind in entries]
    if not kinds:
        reader.error(item, f"{what} checks nothing: give it one of `command`, `file` or `metadata`")
        return None
    if len(kinds) > 1:
        reader.error(
            entries[kinds[1]][0],
            f"{what} has both `{kinds[0]}` and `{kinds[1]}`: write one check per test",
        )
        return None
    kind = kinds[0]
    for key, (key_node, _) in entries.items():
        owner = next((k for k, keys in KIND_KEYS.items() if key in keys), kind)
        if owner != kind:
            reader.error(key_node, f"`{key}` belongs to {owner} tests, not to {kind} {what}")
    return PARSERS[kind](reader, entries, what)


# --- command tests -------------------------------------------------------------------------


def _command(reader: Reader, entries: Entries, what: str) -> CommandCheck:
    return CommandCheck(
        command=_command_line(reader, entries["command"][1], what),
        exit_code=_exit_code(reader, entries, what),
        user=_user(reader, entries, what),
        stdout=_patterns(reader, entries, "stdout"),
        stderr=_patterns(reader, entries, "stderr"),
        stdout_absent=_patterns(reader, entries, "stdout_absent"),
        stderr_absent=_patterns(reader, entries, "stderr_absent"),
    )


def _command_line(reader: Reader, node: yaml.Node, what: str) -> tuple[str, ...]:
    if not isinstance(node, yaml.SequenceNode) or not node.value:
        reader.error(
            node,
            f"`command` of {what} must be a non-empty list of arguments, e.g. [java, -version]"
            " (for a shell line: [sh, -c, '...'])",
        )
        return ()
    return tuple(arg for arg, _ in reader.strings(node, f"`command` of {what}"))


def _exit_code(reader: Reader, entries: Entries, what: str) -> int:
    if "exit_code" not in entries:
        return 0
    node = entries["exit_code"][1]
    text = reader.scalar(node, f"`exit_code` of {what}")
    if text is None:
        return 0
    if not text.isdigit() or int(text) > 255:
        reader.error(node, f"`exit_code` of {what} must be a number from 0 to 255, not {text!r}")
        return 0
    return int(text)


def _user(reader: Reader, entries: Entries, what: str) -> str | None:
    user = _optional(reader, entries, "user", f"`user` of {what}")
    if user is not None and not user.strip():
        reader.error(entries["user"][1], f"`user` of {what} is empty: name a user or a uid")
        return None
    return user


def _patterns(reader: Reader, entries: Entries, key: str) -> tuple[str, ...]:
    if key not in entries:
        return ()
    found = reader.strings(entries[key][1], f"`{key}`")
    return tuple(text for text, item in found if _valid_pattern(reader, item, text, f"`{key}`"))


def _valid_pattern(reader: Reader, node: yaml.Node, text: str, where: str) -> bool:
    try:
        re.compile(text)
    except re.error as exc:
        reader.error(node, f"invalid regular expression {text!r} in {where}: {exc}")
        return False
    return True


# --- file tests ----------------------------------------------------------------------------


def _file(reader: Reader, entries: Entries, what: str) -> FileCheck:
    path = _path(reader, entries["file"][1], what)
    absent = False
    if "absent" in entries:
        absent = reader.boolean(entries["absent"][1], f"`absent` of {what}") or False
    if absent:
        for key in ("type", "mode", "owner"):
            if key in entries:
                reader.error(entries[key][0], f"{what} expects {path} to be absent: drop `{key}`")
    return FileCheck(
        path=path,
        absent=absent,
        type=_file_type(reader, entries, what),
        mode=_mode(reader, entries, what),
        owner=_owner(reader, entries, what),
    )


def _path(reader: Reader, node: yaml.Node, what: str) -> str:
    path = reader.scalar(node, f"`file` of {what}") or ""
    if path and (not path.startswith("/") or "\n" in path):
        reader.error(node, f"`file` of {what} must be an absolute path, not {path!r}")
    return path


def _file_type(reader: Reader, entries: Entries, what: str) -> FileType | None:
    text = _optional(reader, entries, "type", f"`type` of {what}")
    if text is None:
        return None
    choices = [t.value for t in FileType]
    if text not in choices:
        reader.error(
            entries["type"][1],
            f"unknown file type {text!r} in {what}{_did_you_mean(text, choices)}",
        )
        return None
    return FileType(text)


def _mode(reader: Reader, entries: Entries, what: str) -> int | None:
    text = _optional(reader, entries, "mode", f"`mode` of {what}")
    if text is None:
        return None
    if not MODE_RE.match(text):
        reader.error(
            entries["mode"][1],
            f'`mode` of {what} must be octal permission bits like "0755" or "1777", not {text!r}',
        )
        return None
    return int(text, 8)


def _owner(reader: Reader, entries: Entries, what: str) -> str | None:
    text = _optional(reader, entries, "owner", f"`owner` of {what}")
    if text is not None and (not text or any(c.isspace() or c == ":" for c in text)):
        reader.error(entries["owner"][1], f"`owner` of {what} must be a user name or a uid")
        return None
    return text


# --- metadata tests ------------------------------------------------------------------------


def _metadata(reader: Reader, entries: Entries, what: str) -> MetadataCheck:
    node = entries["metadata"][1]
    fields = reader.mapping(node, f"`metadata` of {what}", METADATA_KEYS)
    if not fields and isinstance(node, yaml.MappingNode) and not node.value:
        reader.error(
            node, f"`metadata` of {what} checks nothing: give it one of {', '.join(METADATA_KEYS)}"
        )
    return MetadataCheck(
        user=_optional(reader, fields, "user", f"`user` in {what}"),
        workdir=_optional(reader, fields, "workdir", f"`workdir` in {what}"),
        env=_pattern_map(reader, fields, "env", ENV_NAME_RE),
        exposed_ports=_ports(reader, fields),
        entrypoint=_argv(reader, fields, "entrypoint", what),
        cmd=_argv(reader, fields, "cmd", what),
        labels=_pattern_map(reader, fields, "labels", None),
    )


def _pattern_map(
    reader: Reader, fields: Entries, key: str, name_re: re.Pattern[str] | None
) -> tuple[tuple[str, str], ...]:
    if key not in fields:
        return ()
    pairs = []
    for name, (name_node, value_node) in reader.mapping(fields[key][1], f"`{key}`", ()).items():
        if name_re is not None and not name_re.match(name):
            reader.error(name_node, f"invalid name {name!r} in `{key}`")
            continue
        where = f"`{key}` {name}"
        pattern = reader.scalar(value_node, where)
        if pattern is not None and _valid_pattern(reader, value_node, pattern, where):
            pairs.append((name, pattern))
    return tuple(pairs)


def _ports(reader: Reader, fields: Entries) -> tuple[str, ...]:
    if "exposed_ports" not in fields:
        return ()
    ports = []
    for text, item in reader.strings(fields["exposed_ports"][1], "`exposed_ports`"):
        match = PORT_RE.match(text)
        if match is None or not 0 < int(match["port"]) < 65536:
            reader.error(item, f"invalid port {text!r}: expected PORT or PORT/tcp|udp|sctp")
            continue
        ports.append(f"{int(match['port'])}/{match['proto'] or 'tcp'}")
    return tuple(ports)


def _argv(reader: Reader, fields: Entries, key: str, what: str) -> tuple[str, ...] | None:
    if key not in fields:
        return None
    node = fields[key][1]
    if not isinstance(node, yaml.SequenceNode):
        reader.error(node, f"`{key}` in {what} must be a list of arguments ([] for none)")
        return None
    return tuple(arg for arg, _ in reader.strings(node, f"`{key}`"))


# --- helpers -------------------------------------------------------------------------------


def _optional(reader: Reader, entries: Entries, key: str, what: str) -> str | None:
    return reader.scalar(entries[key][1], what) if key in entries else None


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = [c for c in choices if word and c.startswith(word)] or difflib.get_close_matches(
        word, choices, n=1
    )
    return f" (did you mean {close[0]!r}?)" if close else f"; expected one of {', '.join(choices)}"


PARSERS: dict[str, Callable[[Reader, Entries, str], Check]] = {
    "command": _command,
    "file": _file,
    "metadata": _metadata,
}

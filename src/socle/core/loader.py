"""Read a catalog file into a :class:`~socle.core.catalog.Catalog`, reporting every problem.

The YAML is composed into nodes (not plain dicts) so each problem can point at
`file:line:col`. Structural problems are collected, not raised one at a time;
the caller gets one :class:`~socle.errors.CatalogError` listing them all.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Protocol

import yaml

from socle.core import versions
from socle.core.catalog import (
    Bootstrap,
    Catalog,
    Duration,
    Image,
    Kind,
    ParentRef,
    ScanConfig,
    Upstream,
    Version,
)
from socle.core.imagetest_parse import parse_tests
from socle.core.nodes import LOADER, Entries, Location, Reader, did_you_mean
from socle.core.platforms import KNOWN_ARCHES
from socle.core.policy import parse_policy
from socle.errors import InputError, Problem
from socle.oci.reference import registry_host_problem

TOP_KEYS = (
    "registry",
    "namespace",
    "images",
    "max_age",
    "pins",
    "policy",
    "scan",
    "architectures",
)
SCAN_KEYS = ("scanner", "db")
IMAGE_KEYS = (
    "repository",
    "bootstrap",
    "upstream",
    "dockerfile",
    "context",
    "parents",
    "default_parent",
    "aliases",
    "tag_name",
    "args",
    "versions",
    "max_age",
    "tests",
    "architectures",
)
VERSION_KEYS = (
    "aliases",
    "parents",
    "args",
    "dockerfile",
    "context",
    "digest",
    "tag",
    "bootstrap",
    "tests",
    "architectures",
)
BOOTSTRAP_KEYS = (
    "distribution",
    "suite",
    "variant",
    "packages",
    "components",
    "architecture",
    "mirror",
    "security",
)
NAME_RE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
REPOSITORY_RE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
ARG_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DURATION_RE = re.compile(r"^(\d+)\s*([smhdw])$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class Files(Protocol):
    """What loading needs from the files a catalog names: its own text, the pins
    file, and whether build contexts and Dockerfiles exist. Passed in, so the
    core does no I/O itself."""

    def read_text(self, path: Path) -> str:
        """The text of `path`; OSError when it cannot be read."""
        ...

    def is_file(self, path: Path) -> bool:
        """True when `path` is a regular file."""
        ...

    def is_dir(self, path: Path) -> bool:
        """True when `path` is a folder."""
        ...


def load(
    path: Path, *, files: Files, scanners: Collection[str]
) -> tuple[Catalog, list[Problem]]:
    """Parse `path`; return what could be understood and every problem found.

    `files` reads the catalog and what it names; `scanners` are the scanner
    names `scan.scanner` may use. Raises InputError only when the file cannot
    be read or is not YAML at all.
    """
    try:
        text = files.read_text(path)
    except OSError as exc:
        raise InputError(
            f"cannot read catalog {path}: {exc.strerror}", hint="pass -c FILE"
        ) from exc
    except UnicodeDecodeError as exc:
        return Catalog(path, "", "", ()), [not_utf8(path, exc)]
    reader = Reader(str(path))
    try:
        root = yaml.compose(text, Loader=LOADER)
    except yaml.YAMLError as exc:
        return Catalog(path, "", "", ()), [yaml_problem(path, text, exc)]
    if root is None:
        return Catalog(path, "", "", ()), [Problem(str(path), 1, 1, "the catalog is empty")]
    return CatalogParser(reader, path, files, scanners).parse(root), reader.problems


class CatalogParser:
    """Turns the composed YAML of one catalog file into model values."""

    def __init__(
        self, reader: Reader, path: Path, files: Files, scanners: Collection[str]
    ) -> None:
        self.r = reader
        self.files = files
        self.scanners = sorted(scanners)
        self.base_dir = path.parent
        self.path = path
        self.max_age: Duration | None = None
        self.architectures: tuple[str, ...] = ()  # the catalog-wide default
        self.pins: dict[str, str] = {}

    def parse(self, root: yaml.Node) -> Catalog:
        top = self.r.mapping(root, "the catalog", TOP_KEYS)
        registry = self.required_scalar(top, "registry", root, "the catalog")
        if registry is not None and (problem := registry_host_problem(registry)):
            self.r.error(top["registry"][1], f"registry {registry!r} {problem}")
        namespace = self.optional_scalar(top, "namespace", "namespace") or ""
        if namespace and not REPOSITORY_RE.match(namespace):
            self.r.error(top["namespace"][1], f"invalid namespace {namespace!r}")
        self.max_age = self.duration(top["max_age"][1]) if "max_age" in top else None
        if "architectures" in top:
            self.architectures = self.arches(top["architectures"][1])
        pins_node = top.get("pins", (None, None))[1]
        pins_path = self.path_value(pins_node, "pins") or self.path.with_suffix(".pins.yaml")
        self.pins = read_pins(pins_path, self.r, pins_node, self.files)
        images: list[Image] = []
        if "images" not in top:
            self.r.error(root, "the catalog has no `images`")
        else:
            entries = self.r.mapping(top["images"][1], "images", ())
            for name, (key_node, value_node) in entries.items():
                image = self.image(name, key_node, value_node, namespace)
                if image is not None:
                    images.append(image)
        policy = None
        if "policy" in top:
            policy = parse_policy(self.r, top["policy"][1])
        scan = self.scan_config(top["scan"][1]) if "scan" in top else None
        return Catalog(
            self.path, registry or "", namespace, tuple(images), pins_path, policy, scan
        )

    def scan_config(self, node: yaml.Node) -> ScanConfig:
        entries = self.r.mapping(node, "scan", SCAN_KEYS)
        scanner = self.optional_scalar(entries, "scanner", "scanner") or "debian"
        if scanner not in self.scanners:
            self.r.error(
                entries["scanner"][1],
                f"unknown scanner {scanner!r}{did_you_mean(scanner, self.scanners)}",
            )
        db = self.optional_scalar(entries, "db", "db")
        if db and "://" not in db:
            db = str(self.base_dir / db)  # a path is relative to the catalog
        return ScanConfig(scanner, db)

    def duration(self, node: yaml.Node) -> Duration | None:
        text = self.r.scalar(node, "max_age")
        match = DURATION_RE.match(text or "")
        if text is None or match is None:
            if text is not None:
                self.r.error(
                    node, f"invalid duration {text!r}: use a number and s, m, h, d or w (7d)"
                )
            return None
        return Duration(int(match[1]) * UNIT_SECONDS[match[2]], text)

    def required_scalar(
        self, entries: Entries, key: str, owner: yaml.Node, what: str
    ) -> str | None:
        if key not in entries:
            self.r.error(owner, f"{what} has no `{key}`")
            return None
        return self.r.scalar(entries[key][1], key)

    def optional_scalar(self, entries: Entries, key: str, what: str) -> str | None:
        return self.r.scalar(entries[key][1], what) if key in entries else None

    def image(
        self, name: str, key_node: yaml.Node, node: yaml.Node, namespace: str
    ) -> Image | None:
        where = self.r.where(key_node)
        if not NAME_RE.match(name):
            self.r.error(
                key_node,
                f"invalid image name {name!r}: use lowercase letters, digits, '.', '_', '-'",
            )
            return None
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
            self.r.error(key_node, f"image {name!r} is empty: give it `versions`")
            return None
        entries = self.r.mapping(node, f"image {name!r}", IMAGE_KEYS)
        kind = self.kind(name, entries, key_node)
        repository = self.optional_scalar(entries, "repository", "repository") or (
            f"{namespace}/{name}" if namespace else name
        )
        if not REPOSITORY_RE.match(repository):
            self.r.error(
                entries.get("repository", (key_node, key_node))[1],
                f"invalid repository {repository!r}",
            )
        tag_name = self.optional_scalar(entries, "tag_name", "tag_name") or name
        image_args = self.args(entries["args"][1]) if "args" in entries else ()
        image_parents = self.parents(entries["parents"][1]) if "parents" in entries else ()
        default_parent = None
        if "default_parent" in entries:
            refs = self.parents(entries["default_parent"][1])
            default_parent = refs[0] if refs else None
        aliases = self.tags(entries["aliases"][1], "aliases") if "aliases" in entries else ()
        max_age = self.duration(entries["max_age"][1]) if "max_age" in entries else self.max_age
        image_arches = (
            self.arches(entries["architectures"][1])
            if "architectures" in entries
            else self.architectures
        )
        defaults = ImageDefaults(
            name=name,
            kind=kind,
            architectures=image_arches,
            args=image_args,
            parents=image_parents,
            bootstrap=entries.get("bootstrap", (None, None))[1],
            upstream=self.optional_scalar(entries, "upstream", "upstream"),
            dockerfile=entries.get("dockerfile", (None, None))[1],
            context=entries.get("context", (None, None))[1],
        )
        if "versions" not in entries:
            self.r.error(key_node, f"image {name!r} has no `versions`")
            return None
        image_versions = tuple(self.versions(entries["versions"][1], defaults))
        if is_empty_collection(entries["versions"][1]):
            self.r.error(
                entries["versions"][1], f"image {name!r} has an empty `versions`: list at least one"
            )
        if (
            kind is Kind.BUILD
            and aliases
            and default_parent is None
            and not any(len(v.parents) == 1 for v in image_versions)
        ):
            self.r.error(
                entries["aliases"][0],
                f"image {name!r} has aliases but no `default_parent` to put them on",
            )
        tests = parse_tests(self.r, entries["tests"][1]) if "tests" in entries else ()
        return Image(
            name,
            repository,
            kind,
            where,
            image_versions,
            tag_name,
            default_parent,
            aliases,
            max_age,
            tests,
        )

    def kind(self, name: str, entries: Entries, key_node: yaml.Node) -> Kind:
        if "bootstrap" in entries and "upstream" in entries:
            self.r.error(
                entries["upstream"][0],
                f"image {name!r} has both `bootstrap` and `upstream`: choose one",
            )
        if "bootstrap" in entries:
            return Kind.BOOTSTRAP
        if "upstream" in entries:
            return Kind.UPSTREAM
        return Kind.BUILD

    def versions(self, node: yaml.Node, defaults: ImageDefaults) -> Iterator[Version]:
        seen: set[str] = set()
        for name, key_node, value_node in self.version_entries(node):
            if not versions.is_valid(name):
                self.r.error(
                    key_node,
                    f"invalid version string {name!r} for image {defaults.name!r}: "
                    "use letters, digits, '.' and '_' (no '-', which separates variants in tags)",
                )
                continue
            if name in seen:
                self.r.error(
                    key_node, f"version {name!r} of image {defaults.name!r} is declared twice"
                )
                continue
            seen.add(name)
            yield self.version(name, key_node, value_node, defaults)

    def version_entries(self, node: yaml.Node) -> Iterator[tuple[str, yaml.Node, yaml.Node | None]]:
        if isinstance(node, yaml.SequenceNode):
            for item in node.value:
                value = self.r.scalar(item, "a version")
                if value is not None:
                    yield value, item, None
        elif isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                value = self.r.scalar(key_node, "a version")
                if value is not None:
                    yield value, key_node, value_node
        else:
            self.r.error(node, "versions must be a list or a mapping")

    def version(
        self, name: str, key_node: yaml.Node, node: yaml.Node | None, d: ImageDefaults
    ) -> Version:
        where = self.r.where(key_node)
        entries: Entries = {}
        if node is not None and not (
            isinstance(node, yaml.ScalarNode) and node.tag.endswith("null")
        ):
            entries = self.r.mapping(node, f"version {name!r} of image {d.name!r}", VERSION_KEYS)
        self.reject_foreign_keys(entries, d, name)
        aliases = self.tags(entries["aliases"][1], "aliases") if "aliases" in entries else ()
        args = dict(d.args)
        if "args" in entries:
            args.update(self.args(entries["args"][1]))
        parents = self.parents(entries["parents"][1]) if "parents" in entries else d.parents
        tests = parse_tests(self.r, entries["tests"][1]) if "tests" in entries else ()
        arches = (
            self.arches(entries["architectures"][1])
            if "architectures" in entries
            else d.architectures
        )
        version = Version(
            name,
            where,
            aliases,
            parents,
            tuple(sorted(args.items())),
            tests=tests,
            architectures=arches,
        )
        if d.kind is Kind.BUILD:
            return self.with_sources(version, entries, d, key_node)
        if d.kind is Kind.UPSTREAM:
            return self.with_upstream(version, entries, d)
        return self.with_bootstrap(version, entries, d, key_node)

    def reject_foreign_keys(self, entries: Entries, d: ImageDefaults, version: str) -> None:
        only: dict[str, Kind] = {
            "digest": Kind.UPSTREAM,
            "tag": Kind.UPSTREAM,
            "bootstrap": Kind.BOOTSTRAP,
        }
        for key in ("parents", "dockerfile", "context", "args"):
            only[key] = Kind.BUILD
        for key, kind in only.items():
            if key in entries and d.kind is not kind:
                self.r.error(
                    entries[key][0],
                    f"`{key}` applies to {kind.value} images, but {d.name!r} is a {d.kind.value} image",
                )

    def with_sources(
        self, v: Version, entries: Entries, d: ImageDefaults, key_node: yaml.Node
    ) -> Version:
        if not v.parents:
            self.r.error(
                key_node,
                f"version {v.name!r} of image {d.name!r} has no parents: a built image needs `parents` "
                "(or use `bootstrap` / `upstream` for an OS image)",
            )
        context_node = entries.get("context", (None, d.context))[1]
        context = self.path_value(context_node, "context") or self.base_dir / d.name
        dockerfile_node = entries.get("dockerfile", (None, d.dockerfile))[1]
        dockerfile = self.path_value(dockerfile_node, "dockerfile") or context / "Dockerfile"
        if not self.files.is_dir(context):
            self.r.error(
                context_node or key_node,
                f"context folder {self.shown(context)} of {d.name}:{v.name} does not exist (create it or set `context:`)",
            )
        elif not self.files.is_file(dockerfile):
            self.r.error(
                dockerfile_node or key_node,
                f"Dockerfile {self.shown(dockerfile)} of {d.name}:{v.name} does not exist (create it or set `dockerfile:`)",
            )
        return replace(v, dockerfile=dockerfile, context=context)

    def with_upstream(self, v: Version, entries: Entries, d: ImageDefaults) -> Version:
        tag = self.optional_scalar(entries, "tag", "tag") or v.name
        digest = self.optional_scalar(entries, "digest", "digest")
        if digest is not None and not DIGEST_RE.match(digest):
            self.r.error(
                entries["digest"][1], f"invalid digest {digest!r}: expected sha256:<64 hex digits>"
            )
            digest = None
        inline = digest is not None
        upstream = Upstream(
            d.upstream or "", tag, digest or self.pins.get(f"{d.name}:{v.name}"), inline
        )
        return replace(v, parents=(), build_args=(), upstream=upstream)

    def with_bootstrap(
        self, v: Version, entries: Entries, d: ImageDefaults, key_node: yaml.Node
    ) -> Version:
        fields: Entries = {}
        if d.bootstrap is not None:
            fields.update(self.r.mapping(d.bootstrap, f"bootstrap of {d.name!r}", BOOTSTRAP_KEYS))
        if "bootstrap" in entries:
            fields.update(
                self.r.mapping(
                    entries["bootstrap"][1], f"bootstrap of {d.name}:{v.name}", BOOTSTRAP_KEYS
                )
            )
        bootstrap = self.bootstrap(fields, key_node, f"{d.name}:{v.name}")
        if v.architectures and "architecture" in fields:
            self.r.error(
                fields["architecture"][0],
                f"bootstrap of {d.name}:{v.name} sets `architecture` and the image has "
                "`architectures`: list them in `architectures` only",
            )
        return replace(v, parents=(), build_args=(), bootstrap=bootstrap)

    def bootstrap(self, fields: Entries, owner: yaml.Node, what: str) -> Bootstrap:
        def text(key: str, default: str) -> str:
            return self.r.scalar(fields[key][1], key) or default if key in fields else default

        suite = text("suite", "")
        if not suite:
            self.r.error(owner, f"bootstrap of {what} has no `suite` (e.g. bookworm)")
        distribution = text("distribution", "debian")
        if distribution != "debian":
            self.r.error(
                fields["distribution"][1],
                f"unsupported distribution {distribution!r}: socle bootstraps debian",
            )

        def listed(key: str, default: tuple[str, ...]) -> tuple[str, ...]:
            return (
                tuple(s for s, _ in self.r.strings(fields[key][1], key))
                if key in fields
                else default
            )

        security = (
            self.r.boolean(fields["security"][1], "security") if "security" in fields else True
        )
        return Bootstrap(
            distribution=distribution,
            suite=suite,
            variant=text("variant", "minbase"),
            packages=listed("packages", ()),
            components=listed("components", ("main",)),
            architecture=text("architecture", "amd64"),
            mirror=self.optional_scalar(fields, "mirror", "mirror"),
            security=security is not False,
        )

    def path_value(self, node: yaml.Node | None, what: str) -> Path | None:
        if node is None:
            return None
        value = self.r.scalar(node, what)
        return (self.base_dir / value) if value else None

    def shown(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.base_dir))
        except ValueError:
            return str(path)

    def args(self, node: yaml.Node) -> tuple[tuple[str, str], ...]:
        entries = self.r.mapping(node, "args", ())
        result = []
        for key, (key_node, value_node) in entries.items():
            if not ARG_RE.match(key):
                self.r.error(key_node, f"invalid build arg name {key!r}")
                continue
            value = self.r.scalar(value_node, f"build arg {key}")
            if value is not None:
                result.append((key, value))
        return tuple(result)

    def parents(self, node: yaml.Node) -> tuple[ParentRef, ...]:
        refs = []
        for text, item in self.r.strings(node, "parents"):
            image, _, tag = text.partition(":")
            if not NAME_RE.match(image) or (tag and not TAG_RE.match(tag)):
                self.r.error(
                    item, f"invalid parent {text!r}: expected IMAGE or IMAGE:TAG from this catalog"
                )
                continue
            refs.append(ParentRef(image, tag or None, self.r.where(item)))
        return tuple(refs)

    def arches(self, node: yaml.Node) -> tuple[str, ...]:
        """`architectures: [amd64, arm64]`: Debian names, each once, the native one first."""
        found: list[str] = []
        for text, item in self.r.strings(node, "architectures"):
            if text not in KNOWN_ARCHES:
                hint = did_you_mean(text, KNOWN_ARCHES)
                self.r.error(
                    item,
                    f"unknown architecture {text!r}{hint}: socle knows {', '.join(KNOWN_ARCHES)} "
                    "(Debian's names)",
                )
            elif text in found:
                self.r.error(item, f"architecture {text!r} is listed twice")
            else:
                found.append(text)
        if is_empty_collection(node):
            self.r.error(node, "`architectures` is empty: list at least one (e.g. [amd64, arm64])")
        return tuple(found)

    def tags(self, node: yaml.Node, what: str) -> tuple[str, ...]:
        result = []
        for text, item in self.r.strings(node, what):
            if not TAG_RE.match(text):
                self.r.error(item, f"invalid tag {text!r} in {what}")
            else:
                result.append(text)
        return tuple(result)


class ImageDefaults:
    """Image-level settings that each version inherits unless it overrides them."""

    def __init__(
        self,
        *,
        name: str,
        kind: Kind,
        args: tuple[tuple[str, str], ...],
        parents: tuple[ParentRef, ...],
        bootstrap: yaml.Node | None,
        upstream: str | None,
        dockerfile: yaml.Node | None,
        context: yaml.Node | None,
        architectures: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.architectures = architectures
        self.kind = kind
        self.args = args
        self.parents = parents
        self.bootstrap = bootstrap
        self.upstream = upstream
        self.dockerfile = dockerfile
        self.context = context


def is_empty_collection(node: yaml.Node) -> bool:
    """`[]` or `{}`: a list or mapping with nothing in it."""
    return isinstance(node, yaml.SequenceNode | yaml.MappingNode) and not node.value


def yaml_problem(path: Path, text: str, exc: yaml.YAMLError, what: str = "") -> Problem:
    """A YAML syntax error as one located line.

    PyYAML's own text spans lines (`... in "<unicode string>", position 3`), and
    a character it refuses (a control character) carries a position, not a mark.
    """
    if isinstance(exc, yaml.reader.ReaderError):
        # libyaml counts the position in bytes, PyYAML in characters: find the character.
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        at = max(text.find(chr(code)), 0)
        before = text[:at]
        line, column = before.count("\n") + 1, at - before.rfind("\n")
        problem = f"character U+{code:04X} is not allowed in YAML (remove it)"
    else:
        mark = getattr(exc, "problem_mark", None)
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = getattr(exc, "problem", None) or type(exc).__name__
    detail = " ".join(str(problem).split())
    return Problem(str(path), line, column, f"invalid YAML{what and ' ' + what}: {detail}")


def not_utf8(path: Path, exc: UnicodeDecodeError) -> Problem:
    """Where a file stops being UTF-8 text (line, column in bytes, and byte offset)."""
    before = exc.object[: exc.start]
    line = before.count(b"\n") + 1
    column = exc.start - before.rfind(b"\n")
    byte = exc.object[exc.start : exc.start + 1].hex()
    return Problem(
        str(path),
        line,
        column,
        f"not UTF-8 text: byte 0x{byte} at offset {exc.start} (save the file as UTF-8)",
    )


def read_pins(
    path: Path, reader: Reader, node: yaml.Node | None, files: Files
) -> dict[str, str]:
    """Upstream digests pinned by `socle pins update`: `image:version: sha256:...`.

    A missing file is fine unless the catalog names it explicitly.
    """
    if not files.is_file(path):
        if node is not None:
            reader.error(node, f"pins file {path} does not exist (run `socle pins update`)")
        return {}
    pins_reader = Reader(str(path))
    try:
        text = files.read_text(path)
        root = yaml.compose(text, Loader=LOADER)
    except OSError as exc:
        where = reader.where(node) if node is not None else Location(str(path), 1, 1)
        message = f"cannot read the pins file {path}: {exc.strerror}"
        reader.problems.append(Problem(where.file, where.line, where.column, message))
        return {}
    except UnicodeDecodeError as exc:
        reader.problems.append(not_utf8(path, exc))
        return {}
    except yaml.YAMLError as exc:
        reader.problems.append(yaml_problem(path, text, exc, "in the pins file"))
        return {}
    pins: dict[str, str] = {}
    if root is None:
        return pins
    for key, (_, value_node) in pins_reader.mapping(root, "the pins file", ()).items():
        digest = pins_reader.scalar(value_node, key)
        if digest is not None and not DIGEST_RE.match(digest):
            pins_reader.error(value_node, f"invalid digest {digest!r} for {key}")
        elif digest is not None:
            pins[key] = digest
    reader.problems.extend(pins_reader.problems)
    return pins

"""The deployment description of one application: `<catalog dir>/deploy/<APP>.yaml`.

One file per application, beside the catalog rather than inside it: the
catalog says how images are built, the description how one of them runs, and
the two change at different paces and are owned by different teams. The file
is read with located YAML nodes, so every problem is one `FILE:LINE:COL: error:`
line; all of them are gathered before anything is rendered.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from socle.core.catalog import Catalog
from socle.core.graph import Graph
from socle.core.loader import not_utf8, yaml_problem
from socle.core.nodes import LOADER, Entries, Reader
from socle.errors import CatalogError, InputError, Problem

TOP_KEYS = (
    "app", "image", "namespace", "replicas", "ports", "env", "config", "secrets",
    "writable", "user", "group", "resources", "probes", "ingress", "egress",
    "autoscaling", "monitoring", "environments",
)  # fmt: skip
PROBE_KINDS = ("readiness", "liveness", "startup")
PROBE_KEYS = (
    "http", "command", "initial_delay_seconds", "period_seconds", "timeout_seconds",
    "failure_threshold",
)  # fmt: skip
DNS_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
PORT_NAME_RE = re.compile(r"^(?=.{1,15}$)[a-z0-9]+(-[a-z0-9]+)*$")
ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
QUANTITY_RE = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
LABEL_KEY_RE = re.compile(r"^([a-z0-9.-]{1,253}/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
LABEL_VALUE_RE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
CIDR_RE = re.compile(r"^\d{1,3}(\.\d{1,3}){3}/\d{1,2}$")
PROTOCOLS = ("TCP", "UDP")


@dataclass(frozen=True)
class Port:
    name: str
    port: int


@dataclass(frozen=True)
class ConfigFile:
    """A file mounted read-only from the application's ConfigMap."""

    path: str
    content: str

    @property
    def key(self) -> str:
        """The ConfigMap key: the path with `/` as `_` (keys cannot hold slashes)."""
        return self.path.strip("/").replace("/", "_")


@dataclass(frozen=True)
class SecretRef:
    """An environment variable read from a key of a Secret the cluster already holds."""

    env: str
    secret: str
    key: str


@dataclass(frozen=True)
class Resources:
    """Kubernetes quantities, as written: `500m`, `512Mi`."""

    requests: Mapping[str, str] = field(default_factory=dict)
    limits: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Probe:
    """An HTTP GET on a declared port, or a command run in the container."""

    http_path: str | None = None
    http_port: str | None = None  # a declared port's name
    command: tuple[str, ...] = ()
    initial_delay_seconds: int = 0
    period_seconds: int = 10
    timeout_seconds: int = 1
    failure_threshold: int = 3


@dataclass(frozen=True)
class Peer:
    """Who may call the application: namespace and pod label selectors, on named ports."""

    namespaces: Mapping[str, str] | None = None  # None: the application's own namespace
    pods: Mapping[str, str] | None = None  # None: every pod of those namespaces
    ports: tuple[str, ...] = ()  # empty: every declared port


@dataclass(frozen=True)
class Destination:
    """What the application may call: an IPv4 CIDR or selected pods, on one port."""

    port: int
    protocol: str = "TCP"
    cidr: str | None = None
    namespaces: Mapping[str, str] | None = None
    pods: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Autoscaling:
    min: int
    max: int
    cpu: int  # target average CPU utilisation, percent of requests


@dataclass(frozen=True)
class Monitoring:
    port: str  # a declared port's name
    path: str = "/metrics"
    service_monitor: bool = False


@dataclass(frozen=True)
class Overrides:
    """What one environment changes: replicas, environment variables, resources."""

    replicas: int | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    resources: Resources | None = None


@dataclass(frozen=True)
class Spec:
    """A validated deployment description."""

    app: str
    path: Path
    image: str  # as written: `legacy-app:1.0` or a variant key
    variant: str  # the catalog variant it names (its key)
    repository: str  # the variant's repository in the catalog's registry
    namespace: str
    user: int
    group: int
    replicas: int = 1
    ports: tuple[Port, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    config: tuple[ConfigFile, ...] = ()
    secrets: tuple[SecretRef, ...] = ()
    writable: tuple[str, ...] = ()
    resources: Resources = field(default_factory=Resources)
    probes: Mapping[str, Probe] = field(default_factory=dict)  # readiness/liveness/startup
    ingress: tuple[Peer, ...] = ()
    egress: tuple[Destination, ...] = ()
    autoscaling: Autoscaling | None = None
    monitoring: Monitoring | None = None
    environments: Mapping[str, Overrides] = field(default_factory=dict)

    @property
    def tag(self) -> str:
        """The tag the registry resolves to a digest at render time."""
        return self.image.partition(":")[2]


class SpecError(CatalogError):
    """A deployment description that cannot be used; lists every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(problems)
        count = len(self.problems)
        self.message = f"{count} problem{'s' if count != 1 else ''} in the deployment description"
        self.args = (self.message,)


def folder(catalog: Catalog) -> Path:
    """Where the descriptions live: `deploy/` beside the catalog file."""
    return catalog.path.parent / "deploy"


def apps(catalog: Catalog) -> list[str]:
    """The applications that have a description, sorted."""
    here = folder(catalog)
    return sorted(p.stem for p in here.glob("*.yaml")) if here.is_dir() else []


def load(catalog: Catalog, graph: Graph, app: str) -> Spec:
    """The description of `app`, its image resolved to a catalog variant.

    Raises InputError for an unknown app (listing the known ones) and SpecError
    with every located problem of the file.
    """
    path = folder(catalog) / f"{app}.yaml"
    if not path.is_file():
        known = ", ".join(apps(catalog)) or "none"
        raise InputError(
            f"no deployment description for {app!r} in {folder(catalog)} (known: {known})",
            hint=f"write {path}",
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError([not_utf8(path, exc)]) from None
    return parse(text, path, graph)


def parse(text: str, path: Path, graph: Graph) -> Spec:
    """The description in `text` (read from `path`); SpecError lists every problem."""
    try:
        root = yaml.compose(text, Loader=LOADER)
    except yaml.YAMLError as exc:
        raise SpecError([yaml_problem(path, text, exc)]) from None
    if root is None:
        raise SpecError([Problem(str(path), 1, 1, "the deployment description is empty")])
    reader = Reader(str(path))
    spec = SpecParser(reader, path, graph).parse(root)
    if reader.problems or spec is None:
        raise SpecError(reader.problems or [Problem(str(path), 1, 1, "incomplete description")])
    return spec


class SpecParser:
    """Turns the composed YAML of one description into a :class:`Spec`."""

    def __init__(self, reader: Reader, path: Path, graph: Graph) -> None:
        self.r = reader
        self.path = path
        self.graph = graph
        self.port_names: set[str] = set()

    def parse(self, root: yaml.Node) -> Spec | None:
        top = self.r.mapping(root, "the deployment description", TOP_KEYS)
        app = self.path.stem
        written = self.r.scalar(top["app"][1], "app") if "app" in top else app
        if written not in (app, None):
            self.r.error(top["app"][1], f"app {written!r} differs from the file name {app!r}")
        if not DNS_LABEL_RE.match(app):
            self.r.error(root, f"application name {app!r} (the file name) is not a DNS label")
        ports = self.ports(top["ports"][1]) if "ports" in top else ()
        self.port_names = {p.name for p in ports}
        image = self.need(top, "image", root)
        namespace = self.need(top, "namespace", root)
        user_node = top.get("user")
        if user_node is None:
            self.r.error(root, "missing required key 'user' (the uid the container runs as)")
        user = self.integer(user_node[1], "user", 1) if user_node else None
        group = self.integer(top["group"][1], "group", 1) if "group" in top else user
        variant = self.variant(image, top["image"][1]) if image is not None else None
        if namespace is not None and not DNS_LABEL_RE.match(namespace):
            self.r.error(top["namespace"][1], f"namespace {namespace!r} is not a DNS label")
        config = self.config(top["config"][1]) if "config" in top else ()
        env = self.env(top["env"][1], "env") if "env" in top else {}
        secrets = self.secrets(top["secrets"][1]) if "secrets" in top else ()
        self.distinct_env(env, secrets, top)
        writable = self.writable(top["writable"][1], config) if "writable" in top else ()
        if image is None or namespace is None or user is None or group is None:
            return None
        if variant is None:
            return None
        return Spec(
            app=app,
            path=self.path,
            image=image,
            variant=variant[0],
            repository=variant[1],
            namespace=namespace,
            user=user,
            group=group,
            replicas=(self.integer(top["replicas"][1], "replicas", 1) if "replicas" in top else 1)
            or 1,
            ports=ports,
            env=env,
            config=config,
            secrets=secrets,
            writable=writable,
            resources=self.resources(top["resources"][1]) if "resources" in top else Resources(),
            probes=self.probes(top["probes"][1]) if "probes" in top else {},
            ingress=self.ingress(top["ingress"][1]) if "ingress" in top else (),
            egress=self.egress(top["egress"][1]) if "egress" in top else (),
            autoscaling=self.autoscaling(top["autoscaling"][1]) if "autoscaling" in top else None,
            monitoring=self.monitoring(top["monitoring"][1]) if "monitoring" in top else None,
            environments=self.environments(top["environments"][1]) if "environments" in top else {},
        )

    # -- values --------------------------------------------------------------------------

    def need(self, entries: Entries, key: str, parent: yaml.Node) -> str | None:
        if key not in entries:
            self.r.error(parent, f"missing required key {key!r}")
            return None
        return self.r.scalar(entries[key][1], key)

    def integer(self, node: yaml.Node, what: str, low: int, high: int | None = None) -> int | None:
        value = self.r.scalar(node, what)
        if value is None:
            return None
        if not re.fullmatch(r"\d+", value) or int(value) < low or (high and int(value) > high):
            bounds = f"from {low} to {high}" if high else f"{low} or more"
            self.r.error(node, f"{what} must be a whole number {bounds}, not {value!r}")
            return None
        return int(value)

    def labels(self, node: yaml.Node, what: str) -> dict[str, str]:
        found: dict[str, str] = {}
        for key, (key_node, value_node) in self.r.mapping(node, what, ()).items():
            value = self.r.scalar(value_node, f"label {key!r} of {what}")
            if not LABEL_KEY_RE.match(key):
                self.r.error(key_node, f"{key!r} in {what} is not a label key")
            elif value is not None and not LABEL_VALUE_RE.match(value):
                self.r.error(value_node, f"{value!r} in {what} is not a label value")
            elif value is not None:
                found[key] = value
        return found

    def sequence(self, node: yaml.Node, what: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            self.r.error(node, f"{what} must be a list")
            return []
        return list(node.value)

    def port_name(self, node: yaml.Node, what: str) -> str | None:
        name = self.r.scalar(node, what)
        if name is not None and name not in self.port_names:
            declared = ", ".join(sorted(self.port_names)) or "none"
            self.r.error(node, f"{what} {name!r} is not a declared port (declared: {declared})")
            return None
        return name

    # -- sections ------------------------------------------------------------------------

    def variant(self, image: str, node: yaml.Node) -> tuple[str, str] | None:
        """The catalog variant a key or tag names, and its repository."""
        name, _, tag = image.partition(":")
        if not tag:
            self.r.error(node, f"image {image!r} names no tag; write {name}:TAG")
            return None
        matches = [v for v in self.graph.variants if v.image.name == name and tag in v.tags]
        if not matches:
            known = sorted({v.image.name for v in self.graph.variants})
            tags = [v.key for v in self.graph.variants if v.image.name == name]
            if tags:
                self.r.error(
                    node, f"no tag {image!r} in the catalog (its variants: {', '.join(tags)})"
                )
            else:
                self.r.error(node, f"no image {name!r} in the catalog (images: {', '.join(known)})")
            return None
        return matches[0].key, matches[0].image.repository

    def ports(self, node: yaml.Node) -> tuple[Port, ...]:
        ports: list[Port] = []
        for item in self.sequence(node, "ports"):
            entries = self.r.mapping(item, "a port", ("name", "port"))
            name = self.need(entries, "name", item)
            number = (
                self.integer(entries["port"][1], "port", 1, 65535) if "port" in entries else None
            )
            if "port" not in entries:
                self.r.error(item, "missing required key 'port'")
            if name is not None and not PORT_NAME_RE.match(name):
                self.r.error(
                    entries["name"][1], f"port name {name!r} must be lowercase, ≤ 15 characters"
                )
            elif name is not None and any(p.name == name for p in ports):
                self.r.error(entries["name"][1], f"port name {name!r} is declared twice")
            elif name is not None and number is not None:
                ports.append(Port(name, number))
        return tuple(ports)

    def env(self, node: yaml.Node, what: str) -> dict[str, str]:
        found: dict[str, str] = {}
        for key, (key_node, value_node) in self.r.mapping(node, what, ()).items():
            if not ENV_RE.match(key):
                self.r.error(key_node, f"{key!r} in {what} is not an environment variable name")
            value = self.r.scalar(value_node, f"{what} {key}")
            if value is not None:
                found[key] = value
        return found

    def config(self, node: yaml.Node) -> tuple[ConfigFile, ...]:
        files: list[ConfigFile] = []
        for path, (key_node, value_node) in self.r.mapping(node, "config", ()).items():
            content = self.r.scalar(value_node, f"the content of {path}")
            if not self.absolute(path, key_node, "config file"):
                continue
            file = ConfigFile(posixpath.normpath(path), content or "")
            if any(f.key == file.key for f in files):
                self.r.error(key_node, f"config file {path!r} has the same key as another")
            elif content is not None:
                files.append(file)
        return tuple(files)

    def absolute(self, path: str, node: yaml.Node, what: str) -> bool:
        if not path.startswith("/") or posixpath.normpath(path) == "/" or ".." in path.split("/"):
            self.r.error(node, f"{what} {path!r} must be an absolute path below /, without '..'")
            return False
        return True

    def secrets(self, node: yaml.Node) -> tuple[SecretRef, ...]:
        refs: list[SecretRef] = []
        for env, (key_node, value_node) in self.r.mapping(node, "secrets", ()).items():
            if not ENV_RE.match(env):
                self.r.error(key_node, f"{env!r} in secrets is not an environment variable name")
                continue
            entries = self.r.mapping(value_node, f"secret {env}", ("secret", "key"))
            secret, key = (
                self.need(entries, "secret", value_node),
                self.need(entries, "key", value_node),
            )
            if secret is not None and not DNS_LABEL_RE.match(secret):
                self.r.error(entries["secret"][1], f"secret name {secret!r} is not a DNS label")
            elif secret is not None and key is not None:
                refs.append(SecretRef(env, secret, key))
        return tuple(refs)

    def distinct_env(
        self, env: dict[str, str], secrets: tuple[SecretRef, ...], top: Entries
    ) -> None:
        for ref in secrets:
            if ref.env in env:
                self.r.error(top["secrets"][1], f"{ref.env} is set both in env and in secrets")

    def writable(self, node: yaml.Node, config: tuple[ConfigFile, ...]) -> tuple[str, ...]:
        """Folders given an emptyDir each; none may hold, or sit in, another mount."""
        paths: list[str] = []
        for raw, item in self.r.strings(node, "writable"):
            if not self.absolute(raw, item, "writable path"):
                continue
            path = posixpath.normpath(raw)
            clash = next((p for p in paths if nested(p, path)), None)
            file = next((f.path for f in config if nested(f.path, path)), None)
            if clash is not None:
                self.r.error(item, f"writable path {path!r} overlaps writable path {clash!r}")
            elif file is not None:
                self.r.error(item, f"writable path {path!r} overlaps config file {file!r}")
            else:
                paths.append(path)
        return tuple(paths)

    def resources(self, node: yaml.Node) -> Resources:
        entries = self.r.mapping(node, "resources", ("requests", "limits"))
        found: dict[str, dict[str, str]] = {"requests": {}, "limits": {}}
        for part, (_, value_node) in entries.items():
            for name, (_, amount_node) in self.r.mapping(
                value_node, f"resources.{part}", ("cpu", "memory")
            ).items():
                amount = self.r.scalar(amount_node, f"resources.{part}.{name}")
                if amount is not None and not QUANTITY_RE.match(amount):
                    self.r.error(amount_node, f"{amount!r} is not a quantity (like 500m or 512Mi)")
                elif amount is not None:
                    found[part][name] = amount
        return Resources(found["requests"], found["limits"])

    def probes(self, node: yaml.Node) -> dict[str, Probe]:
        probes: dict[str, Probe] = {}
        for kind, (_, value_node) in self.r.mapping(node, "probes", PROBE_KINDS).items():
            probe = self.probe(value_node, f"the {kind} probe")
            if probe is not None:
                probes[kind] = probe
        return probes

    def probe(self, node: yaml.Node, what: str) -> Probe | None:
        entries = self.r.mapping(node, what, PROBE_KEYS)
        if ("http" in entries) == ("command" in entries):
            self.r.error(node, f"{what} needs either http or command")
            return None
        timing = {
            key: self.integer(
                entries[key][1], f"{key} of {what}", 1 if key != "initial_delay_seconds" else 0
            )
            for key in PROBE_KEYS[2:]
            if key in entries
        }
        if None in timing.values():
            return None
        numbers = {key: value for key, value in timing.items() if value is not None}
        base = Probe(
            initial_delay_seconds=numbers.get("initial_delay_seconds", 0),
            period_seconds=numbers.get("period_seconds", 10),
            timeout_seconds=numbers.get("timeout_seconds", 1),
            failure_threshold=numbers.get("failure_threshold", 3),
        )
        if "command" in entries:
            command = tuple(
                value for value, _ in self.r.strings(entries["command"][1], f"{what} command")
            )
            return replace(base, command=command) if command else None
        http = self.r.mapping(entries["http"][1], f"{what} http", ("path", "port"))
        path = self.need(http, "path", entries["http"][1])
        port = self.port_name(http["port"][1], f"the port of {what}") if "port" in http else None
        if "port" not in http:
            self.r.error(entries["http"][1], f"{what} http needs a port (a declared port's name)")
        if path is not None and not path.startswith("/"):
            self.r.error(http["path"][1], f"the path of {what} must start with /")
            return None
        return replace(base, http_path=path, http_port=port) if path and port else None

    def selectors(self, entries: Entries) -> dict[str, dict[str, str] | None]:
        return {
            key: self.labels(entries[key][1], key) if key in entries else None
            for key in ("namespaces", "pods")
        }

    def ingress(self, node: yaml.Node) -> tuple[Peer, ...]:
        peers: list[Peer] = []
        for item in self.sequence(node, "ingress"):
            entries = self.r.mapping(item, "an ingress rule", ("namespaces", "pods", "ports"))
            if "namespaces" not in entries and "pods" not in entries:
                self.r.error(item, "an ingress rule needs namespaces or pods (label selectors)")
                continue
            names = self.r.strings(entries["ports"][1], "ports") if "ports" in entries else []
            ports = tuple(p for _, n in names if (p := self.port_name(n, "ingress port")))
            peers.append(Peer(ports=ports, **self.selectors(entries)))
        return tuple(peers)

    def egress(self, node: yaml.Node) -> tuple[Destination, ...]:
        keys = ("cidr", "namespaces", "pods", "port", "protocol")
        found: list[Destination] = []
        for item in self.sequence(node, "egress"):
            entries = self.r.mapping(item, "an egress rule", keys)
            cidr = self.r.scalar(entries["cidr"][1], "cidr") if "cidr" in entries else None
            selected = "namespaces" in entries or "pods" in entries
            if (cidr is None) == (not selected):
                self.r.error(item, "an egress rule needs either cidr or namespaces/pods selectors")
                continue
            if cidr is not None and not valid_cidr(cidr):
                self.r.error(entries["cidr"][1], f"{cidr!r} is not an IPv4 CIDR like 10.0.0.0/8")
                continue
            if "port" not in entries:
                self.r.error(item, "an egress rule needs a port")
                continue
            port = self.integer(entries["port"][1], "port", 1, 65535)
            protocol = (
                self.r.scalar(entries["protocol"][1], "protocol")
                if "protocol" in entries
                else "TCP"
            )
            if protocol not in PROTOCOLS:
                self.r.error(
                    entries["protocol"][1], f"protocol must be TCP or UDP, not {protocol!r}"
                )
            elif port is not None:
                found.append(Destination(port, protocol, cidr, **self.selectors(entries)))
        return tuple(found)

    def autoscaling(self, node: yaml.Node) -> Autoscaling | None:
        entries = self.r.mapping(node, "autoscaling", ("min", "max", "cpu"))
        for key in ("min", "max", "cpu"):
            if key not in entries:
                self.r.error(node, f"autoscaling needs {key!r}")
        if len(entries) < 3:
            return None
        low = self.integer(entries["min"][1], "autoscaling.min", 1)
        high = self.integer(entries["max"][1], "autoscaling.max", 1)
        cpu = self.integer(entries["cpu"][1], "autoscaling.cpu", 1, 100)
        if low is None or high is None or cpu is None:
            return None
        if high < low:
            self.r.error(
                entries["max"][1], f"autoscaling.max {high} is below autoscaling.min {low}"
            )
            return None
        return Autoscaling(low, high, cpu)

    def monitoring(self, node: yaml.Node) -> Monitoring | None:
        entries = self.r.mapping(node, "monitoring", ("port", "path", "service_monitor"))
        if "port" not in entries:
            self.r.error(node, "monitoring needs a port (a declared port's name)")
            return None
        port = self.port_name(entries["port"][1], "the monitoring port")
        path = (
            self.r.scalar(entries["path"][1], "monitoring.path")
            if "path" in entries
            else "/metrics"
        )
        if path is not None and not path.startswith("/"):
            self.r.error(entries["path"][1], "monitoring.path must start with /")
            return None
        service_monitor = (
            self.r.boolean(entries["service_monitor"][1], "monitoring.service_monitor")
            if "service_monitor" in entries
            else False
        )
        if port is None or path is None:
            return None
        return Monitoring(port, path, bool(service_monitor))

    def environments(self, node: yaml.Node) -> dict[str, Overrides]:
        found: dict[str, Overrides] = {}
        for name, (key_node, value_node) in self.r.mapping(node, "environments", ()).items():
            if not DNS_LABEL_RE.match(name):
                self.r.error(key_node, f"environment name {name!r} is not a DNS label")
                continue
            what = f"environment {name}"
            entries = self.r.mapping(value_node, what, ("replicas", "env", "resources"))
            replicas = (
                self.integer(entries["replicas"][1], f"{what} replicas", 1)
                if "replicas" in entries
                else None
            )
            found[name] = Overrides(
                replicas=replicas,
                env=self.env(entries["env"][1], f"{what} env") if "env" in entries else {},
                resources=self.resources(entries["resources"][1])
                if "resources" in entries
                else None,
            )
        return found


def nested(a: str, b: str) -> bool:
    """True when one path is the other or lies under it."""
    return a == b or a.startswith(b.rstrip("/") + "/") or b.startswith(a.rstrip("/") + "/")


def valid_cidr(cidr: str) -> bool:
    if not CIDR_RE.match(cidr):
        return False
    address, prefix = cidr.split("/")
    return all(int(octet) <= 255 for octet in address.split(".")) and int(prefix) <= 32

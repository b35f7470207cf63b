"""Without rich, a run's summary table and event lines read exactly as rich prints them off a terminal."""

from __future__ import annotations

import io
import random
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console
from rich.text import Text

from socle.commands.display import RunDisplay, plain_table, run_summary
from socle.events import Event, Status
from socle.executor import Outcome

DIGEST = "sha256:" + "c4e2765f2f4368b8c22e40718f6c0411e9475b5f5690f4d57d6b2ea373f0e54e"
ENTERPRISE = (
    "debian:12",
    "java:17-debian12",
    "python:3.11-debian12",
    "tomcat:10-java17-debian12",
    "legacy-app:1.0-tomcat10-java17-debian12",
)


def outcome(key: str, status: Status, **fields: Any) -> Outcome:
    step: Any = SimpleNamespace(variant=SimpleNamespace(key=key))
    return Outcome(step, status, **fields)


def printed(
    outcomes: list[Outcome], width: int, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, str]:
    """What run_summary prints without rich, and what rich prints, at `width` columns."""
    monkeypatch.setenv("COLUMNS", str(width))
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE"):
        monkeypatch.delenv(name, raising=False)
    plain = io.StringIO()
    monkeypatch.setattr("sys.stdout", plain)
    run_summary(outcomes)
    rich = io.StringIO()
    run_summary(outcomes, Console(file=rich, width=width))
    return plain.getvalue(), rich.getvalue()


def test_a_no_op_summary_is_printed_without_rich_as_rich_prints_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    outcomes = [outcome(key, Status.SKIPPED, digest=DIGEST) for key in ENTERPRISE]
    for width in (40, 80, 120):
        monkeypatch.setenv("COLUMNS", str(width))
        lines = plain_table(("image", "status"), [(key, "skipped") for key in ENTERPRISE], width)
        assert lines is not None
        plain, rich = printed(outcomes, width, monkeypatch)
        assert plain == rich
    assert (
        "tomcat:10-java17-de… │ skipped"
        in plain_table(
            ("image", "status", "time", "digest", "gates", "tags moved"),
            [(key, "skipped", "", DIGEST[:19], "", "") for key in ENTERPRISE],
            80,
        )[5]
    )  # type: ignore[index]


def test_random_tables_match_rich_wherever_they_are_printed_without_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chance = random.Random(14)
    plain_ones = []

    def counted(*args: Any) -> list[str] | None:
        lines = plain_table(*args)
        plain_ones.append(lines is not None)
        return lines

    monkeypatch.setattr("socle.commands.display.plain_table", counted)
    for _ in range(150):
        outcomes = [
            outcome(
                "x" * chance.randint(1, 45) + ":" + "1" * chance.randint(1, 5),
                chance.choice([Status.SKIPPED, Status.BUILT, Status.FAILED, Status.BLOCKED]),
                digest=chance.choice([None, DIGEST]),
                seconds=chance.choice([0.0, 3.25, 125.0]),
                notes=chance.choice([[], ["tests: 3 passed"], ["sbom: 178 packages", "scan: ok"]]),
                tags_moved=chance.choice([[], ["12"], ["3.11", "3", "latest"]]),
            )
            for _ in range(chance.randint(0, 6))
        ]
        plain, rich = printed(outcomes, chance.randint(20, 160), monkeypatch)
        assert plain == rich
    assert sum(plain_ones) > 50  # a third or more took the plain path


def test_cells_rich_would_wrap_or_style_are_left_to_rich() -> None:
    assert plain_table(("gates",), [("sbom: 178 packages (4 of 5 layers cached)",)], 30) is None
    assert plain_table(("image",), [("[bold]x",)], 80) is None
    assert plain_table(("image",), [("a:smile:b",)], 80) is None
    assert plain_table(("image",), [("café",)], 80) is None
    assert plain_table(("image", "status"), [("debian:12", "skipped")], 80) == [
        "image     ┃ status ",
        "━━━━━━━━━━╇━━━━━━━━",
        "debian:12 │ skipped",
    ]


@pytest.mark.parametrize(
    "event",
    [
        Event(Status.BUILDING, "debian:12", "never published"),
        Event(Status.PUSHING, "debian:12"),
        Event(Status.BUILT, "debian:12", digest=DIGEST, seconds=58.8),
        Event(Status.TESTING, "java:17-debian12", "sbom"),
        Event(Status.TAGGED, "java:17-debian12", "17, latest"),
        Event(Status.TAGGING, None, "moving floating tags"),
        Event(Status.FAILED, "java:17-debian12", "STEP 2/2: RUN false\n[exit status 1]"),
        Event(Status.BLOCKED, "tomcat:10-java17-debian12", "its parent failed"),
    ],
)
def test_event_lines_off_a_terminal_are_the_plain_text_of_the_rich_ones(
    event: Event, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE"):
        monkeypatch.delenv(name, raising=False)
    with RunDisplay(1) as display:
        assert display.progress is None
        display(event)
    assert capsys.readouterr().err == Text.from_markup(RunDisplay.line(event)).plain + "\n"

"""What a domain module exposes to the CLI: its layers as ``JOBS = {"raw": Job(...), ...}``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Job:
    """One runnable layer of a domain: ``run(spark, ds, **options)`` plus its extra CLI options.

    Attributes:
        run: the job function; its first docstring line is the CLI help.
        options: ``(flag, argparse kwargs)`` pairs; the parsed values are passed to ``run`` by keyword.
        needs_landing_bucket: pass the ``landing_bucket`` of the environment to ``run``.
    """

    run: Callable[..., object]
    options: Sequence[tuple[str, dict]] = field(default_factory=tuple)
    needs_landing_bucket: bool = False


# The raw options of the two kinds of source: a landing folder of one slice, or a feed of files landed at any time.
SOURCE_OPTION = ("--source", {"help": "files to read (default: the slice's landing folder, with its manifest)"})
PREFIX_OPTION = ("--prefix", {"help": "files to read: a key prefix in the landing bucket, or a full URI"})


def layers(raw: Job, bronze: Callable[..., object], gold: Callable[..., object], *, max_reject_ratio: float) -> dict:
    """A domain's ``JOBS``: its raw job, and bronze (gated at ``max_reject_ratio`` by default) and gold."""
    gate = {"type": float, "default": max_reject_ratio, "help": "fail above this share of rejected records"}
    return {"raw": raw, "bronze": Job(bronze, [("--max-reject-ratio", gate)]), "gold": Job(gold)}

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

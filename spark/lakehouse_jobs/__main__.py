"""Command line of the Spark image: ``<domain> <layer> --ds YYYY-MM-DD [job options]``."""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import logging
import pkgutil
import sys
import traceback
from collections.abc import Sequence

from lakehouse_jobs.errors import one_line
from lakehouse_jobs.job import Job


def _registry() -> dict[str, dict[str, Job]]:
    """Every module of this package with a ``JOBS`` mapping is a domain, named by its ``DOMAIN``."""
    import lakehouse_jobs

    registry = {}
    for info in pkgutil.iter_modules(lakehouse_jobs.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"lakehouse_jobs.{info.name}")
        if isinstance(getattr(module, "JOBS", None), dict):
            registry[module.DOMAIN] = module.JOBS
    return dict(sorted(registry.items()))


def _date(text: str) -> str:
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"--ds must be a date YYYY-MM-DD, got {text!r}") from None


def build_parser(registry: dict[str, dict[str, Job]]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lakehouse-spark", description=__doc__)
    domains = parser.add_subparsers(dest="domain", required=True, metavar="domain")
    for domain, layers in registry.items():
        layer_parsers = domains.add_parser(domain, help=f"{domain} pipeline").add_subparsers(
            dest="layer", required=True, metavar="layer"
        )
        for layer, job in layers.items():
            sub = layer_parsers.add_parser(layer, help=(job.run.__doc__ or "").splitlines()[0])
            sub.add_argument("--ds", required=True, type=_date, help="the data interval's date, YYYY-MM-DD")
            for flag, kwargs in job.options:
                sub.add_argument(flag, **kwargs)
    return parser


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The parsed command line (a usage error exits with status 2, before any environment is read)."""
    return build_parser(_registry()).parse_args(argv)


def resolve(args: argparse.Namespace, env) -> tuple[Job, dict]:
    """The job a parsed command line names, and the keyword options to call its ``run`` with."""
    job = _registry()[args.domain][args.layer]
    options = {k: v for k, v in vars(args).items() if k not in {"domain", "layer", "ds"} and v is not None}
    if job.needs_landing_bucket:
        options.setdefault("landing_bucket", env.landing_bucket)
    return job, options


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout)
    args = parse(argv)
    from lakehouse_jobs.session import JobEnv, build_session

    try:
        env = JobEnv.from_env()
        job, options = resolve(args, env)
        spark = build_session(f"{args.domain}-{args.layer}", env)
        try:
            result = job.run(spark, args.ds, **options)
        finally:
            spark.stop()
    except Exception as exc:  # noqa: BLE001 - the contract is one line and a non-zero exit, whatever failed
        traceback.print_exc(file=sys.stderr)
        print(f"{args.domain} {args.layer} ds={args.ds} failed: {one_line(exc)}", file=sys.stderr, flush=True)
        return 1
    print(f"{args.domain} {args.layer} ds={args.ds} done: {result}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

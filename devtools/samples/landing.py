"""What the feed generators share to drop their files into the landing bucket: the S3 client and the CLI options."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any


def s3_client_for(endpoint: str | None, conn_id: str = "lakehouse_s3") -> Any:
    """The S3 client of the Airflow connection ``conn_id``, or one for ``endpoint`` (credentials from the usual
    AWS environment variables or files, e.g. ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``)."""
    if not endpoint:
        from include.landing.s3 import s3_client

        return s3_client(conn_id)
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=endpoint, config=Config(s3={"addressing_style": "path"}))


def add_destination(sub: argparse.ArgumentParser, command: str, prefix: str) -> None:
    """The options of where the files go: the bucket for ``drop`` (``--endpoint``, ``--conn-id``, ``--bucket``,
    ``--prefix``, default ``prefix``), else the local folder (``--out``)."""
    if command == "drop":
        sub.add_argument("--endpoint", help="S3 endpoint URL (default: the Airflow connection's)")
        sub.add_argument("--conn-id", default="lakehouse_s3", help="Airflow connection of the S3 store")
        sub.add_argument("--bucket", default="landing")
        sub.add_argument("--prefix", default=prefix)
    else:
        sub.add_argument("--out", type=Path, required=True, help="destination folder")


def feed_parser(
    prog: str, description: str, prefix: str, helps: dict[str, str], add_options: Callable[[Any], None]
) -> argparse.ArgumentParser:
    """A command line of two subcommands, ``drop`` and ``write`` (``helps``: each one's help), with the generator's
    own options (``add_options(subparser)``) and where the files go (``add_destination``)."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    commands = parser.add_subparsers(dest="command", required=True)
    for command in ("drop", "write"):
        sub = commands.add_parser(command, help=helps[command])
        add_options(sub)
        add_destination(sub, command, prefix)
    return parser

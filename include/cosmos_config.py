"""Cosmos configuration for the analytics dbt project: where it lives, how it connects, how and from what dbt runs."""

from __future__ import annotations

import os
from pathlib import Path

from cosmos import ExecutionConfig, ExecutionMode, LoadMode, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import InvocationMode, TestBehavior
from cosmos.profiles import PostgresUserPasswordProfileMapping

DBT_PROJECT_DIR = Path(__file__).resolve().parent / "dbt"
DBT_PROJECT_NAME = "lakehouse"  # `name:` in dbt_project.yml
DBT_PROFILE_NAME = "lakehouse"  # `profile:` in dbt_project.yml
ANALYTICS_CONN_ID = "analytics_postgres"
DEFAULT_DBT_EXECUTABLE = "/usr/local/airflow/dbt_venv/bin/dbt"


def manifest_path() -> Path:
    """The manifest.json written by ``dbt parse`` (devtools/dbt_setup.sh locally, the Dockerfile in the image).

    ``DBT_MANIFEST_PATH`` overrides the default ``include/dbt/target/manifest.json``: ``astro dev start`` mounts the
    host's ``include/`` over the image's, so the image keeps its own manifest elsewhere.
    """
    return Path(os.environ.get("DBT_MANIFEST_PATH") or DBT_PROJECT_DIR / "target" / "manifest.json")


def project_config() -> ProjectConfig:
    """The dbt project, rendered from its pre-built manifest; it has no packages, so ``dbt deps`` never runs."""
    return ProjectConfig(
        dbt_project_path=DBT_PROJECT_DIR,
        manifest_path=manifest_path(),
        project_name=DBT_PROJECT_NAME,
        install_dbt_deps=False,
    )


def profile_config() -> ProfileConfig:
    """A dbt profile mapped at run time from the Airflow connection ``analytics_postgres``, default schema ``gold``.

    The mapping passes the password to dbt through an environment variable and refuses a connection without one.
    """
    return ProfileConfig(
        profile_name=DBT_PROFILE_NAME,
        target_name="analytics",
        profile_mapping=PostgresUserPasswordProfileMapping(conn_id=ANALYTICS_CONN_ID, profile_args={"schema": "gold"}),
    )


def execution_config() -> ExecutionConfig:
    """Run dbt as a subprocess from its own virtualenv (``DBT_EXECUTABLE``, default the image's ``dbt_venv``).

    Local mode with a pre-installed executable is Astronomer's documented set-up: dbt's pins stay out of Airflow's
    environment, and unlike the virtualenv mode nothing is pip-installed when a task runs.
    """
    return ExecutionConfig(
        execution_mode=ExecutionMode.LOCAL,
        invocation_mode=InvocationMode.SUBPROCESS,
        dbt_executable_path=os.environ.get("DBT_EXECUTABLE") or DEFAULT_DBT_EXECUTABLE,
    )


def render_config() -> RenderConfig:
    """Render from the manifest (no dbt call at DAG parse time): one ``dbt build`` task per model.

    A model's build runs it and then its own tests in one dbt process: half the dbt processes of a run task and a test
    task per model, each of which pays dbt's start and the project load. Tests that read two models (e.g. hours
    adding up to days) are left out of both builds and get their own task after both, instead of running with
    whichever model finishes first. No Airflow Asset per model: nothing is scheduled on the marts, and Cosmos warns
    on every task that its Asset URIs changed with Airflow 3.
    """
    return RenderConfig(
        load_method=LoadMode.DBT_MANIFEST,
        test_behavior=TestBehavior.BUILD,
        should_detach_multiple_parents_tests=True,
        emit_datasets=False,
    )

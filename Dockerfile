# Astro Runtime 3.3-1 ships Airflow 3.3.0. Its ONBUILD steps install packages.txt and requirements.txt
# and copy the project in, so this file only adds what those two files cannot express.
FROM astrocrpublic.azurecr.io/runtime:3.3-1

# dbt lives in its own virtualenv (Astronomer's documented pattern for Cosmos) because its pins would
# otherwise fight Airflow's. Calling the venv's pip directly is the same as activate/pip/deactivate without
# depending on the build shell. Pinned: an unpinned install resolves to a release that downloads at install
# time. Cosmos runs it as /usr/local/airflow/dbt_venv/bin/dbt. No PYTHONPATH needed: Astro already puts
# /usr/local/airflow (dags/, include/, plugins/) on the path.
RUN python -m venv dbt_venv \
    && dbt_venv/bin/pip install --no-cache-dir dbt-core==1.11.16 dbt-postgres==1.11.0

# Cosmos renders the dbt tasks from a manifest parsed once here, never at DAG parse time (include/cosmos_config.py).
# Astro's ONBUILD has already copied the project in. The manifest goes outside include/ because `astro dev start`
# mounts the host's include/ over the image's. Parsing needs a profile but no database: include/dbt/profiles is a
# placeholder; tasks get theirs from the `analytics_postgres` connection. Telemetry off: nothing here phones home.
ENV DBT_EXECUTABLE=/usr/local/airflow/dbt_venv/bin/dbt \
    DBT_MANIFEST_PATH=/usr/local/airflow/dbt_target/manifest.json \
    DBT_SEND_ANONYMOUS_USAGE_STATS=false \
    AIRFLOW__COSMOS__ENABLE_TELEMETRY=False
RUN dbt_venv/bin/dbt parse --quiet --project-dir include/dbt --profiles-dir include/dbt/profiles \
        --target-path /usr/local/airflow/dbt_target --log-path /tmp/dbt-logs

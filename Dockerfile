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

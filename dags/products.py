"""
## Products: hourly sensor Parquet files → raw → bronze readings → gold product master

The sensors drop one pandas-written Parquet file per hour under `landing/<landing_prefix>`, named after the hour
(`2024-01-01 00-00-00.parquet`; any key works), columns `department_name, sensor_serial, create_at, product_name,
product_expire`. Each daily run reads the files it has not processed yet (a file is known by its path, ETag and
size: an identical re-drop is skipped, new content is read again and replaces that file's earlier rows in every
slice) into `raw.products`, validates them into `bronze.products` (one row per reading: department, serial,
product, creation hour) and `bronze.products_rejects`, then writes `gold.product_master` and the department,
shelf-life and expiry aggregates for the run's `ds`.

A corrected file takes its old rows out of older master slices; the last task announces those slices on the
master's Asset, and the serve DAG reloads them as well as the run's own.
"""

from airflow.sdk import Param, chain

from include.pipeline import announce_changed_slices, lakehouse_dag, spark_layers

PARAMS = {"landing_prefix": Param("products/", type="string", description="key prefix of the hourly files in landing")}


@lakehouse_dag("products", schedule="@daily", doc_md=__doc__, params=PARAMS, max_reject_ratio=0.1)
def products():
    layers = spark_layers("products", raw_args=["--prefix", "{{ params.landing_prefix }}"])
    moved = announce_changed_slices("announce_moved_slices", "products_master_moved_slices", "gold.product_master")
    chain(*layers, moved)


products()

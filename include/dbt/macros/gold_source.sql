{#-
    The gold source table, or an empty relation of the same columns while that table is not served yet.

    The serve DAG builds every mart after each load, and a domain whose pipeline has not run yet has no table in
    `gold`: its staging view then selects nothing instead of failing the whole dbt run. The view is rebuilt on the
    next run, so it reads the real table as soon as one exists.

    Args:
        table_name: the table in source `gold`.
        columns: column name -> PostgreSQL type, in the table's order.
-#}
{% macro gold_source(table_name, columns) %}
    {%- set relation = source('gold', table_name) -%}
    {%- set found = adapter.get_relation(relation.database, relation.schema, relation.identifier) if execute else relation -%}
    {%- if found is not none -%}
        {{ relation }}
    {%- else -%}
        (select {% for name, type in columns.items() %}cast(null as {{ type }}) as {{ adapter.quote(name) }}{{ ", " if not loop.last }}{% endfor %} where false)
    {%- endif -%}
{% endmacro %}

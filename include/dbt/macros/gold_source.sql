{#-
    The gold source table, or an empty relation of the same columns while that table is not served yet.

    The serve DAG builds every mart after each load, and a domain whose pipeline has not run yet has no table in
    `gold`: its staging view then selects nothing instead of failing the whole dbt run. The view is rebuilt on the
    next run, so it reads the real table as soon as one exists.

    Args:
        table_name: the table in source `gold`.
        columns: column name -> PostgreSQL type, in any order (the stand-in is read by name). A PostGIS type
            (`geometry(Point, 4326)`) stands in as `bytea` while the database has no PostGIS yet (the loader of the
            table that has such a column installs it), so the empty view still builds; it is typed properly once the
            table exists.
-#}
{% macro gold_source(table_name, columns) %}
    {%- set relation = source('gold', table_name) -%}
    {%- set found = adapter.get_relation(relation.database, relation.schema, relation.identifier) if execute else relation -%}
    {%- if found is not none -%}
        {{ relation }}
    {%- else -%}
        {%- set postgis = namespace(checked=false, installed=true) -%}
        (select {% for name, type in columns.items() -%}
            {%- set stand_in = type -%}
            {%- if (type | lower | trim).startswith('geometry') -%}
                {%- if not postgis.checked -%}
                    {%- set postgis.installed = gold_source_has_type('geometry') -%}
                    {%- set postgis.checked = true -%}
                {%- endif -%}
                {%- set stand_in = type if postgis.installed else 'bytea' -%}
            {%- endif -%}
            cast(null as {{ stand_in }}) as {{ adapter.quote(name) }}{{ ", " if not loop.last }}
        {%- endfor %} where false)
    {%- endif -%}
{% endmacro %}


{#- Whether `type_name` resolves to a type on the connection's search path (false while not executing). -#}
{% macro gold_source_has_type(type_name) %}
    {%- if not execute -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set result = run_query("select to_regtype('" ~ type_name ~ "') is not null") -%}
    {{ return(result.columns[0].values()[0]) }}
{% endmacro %}

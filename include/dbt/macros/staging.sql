{#-
    The staging view of a gold table: its columns listed one by one (never `*`: should a secret ever reach a served
    table, it stops here), `_loaded_at` as `loaded_at`, and the renames given.

    Args:
        table_name: the table in source `gold`.
        columns: column name -> PostgreSQL type, in the staged order (see `gold_source`).
        renamed: gold column name -> its staged name, besides `_loaded_at` -> `loaded_at`.
-#}
{% macro stage_gold_table(table_name, columns, renamed={}) %}
    {%- set names = {'_loaded_at': 'loaded_at'} -%}
    {%- do names.update(renamed) -%}
with

source as (

    select * from {{ gold_source(table_name, columns) }} as gold_table

),

renamed as (

    select
        {% for name in columns -%}
            {{ name }}{{ ' as ' ~ names[name] if name in names }}{{ ",\n        " if not loop.last }}
        {%- endfor %}

    from source

)

select * from renamed
{% endmacro %}


{#-
    The column names of a built relation, in order, without ``except`` (an empty list while dbt only parses, or
    while the relation is not built).

    Args:
        relation: a `ref` or `source`, built before the model that asks (dbt runs the model after it).
        except: column names to leave out.
        after: only the columns after this one; through: only the columns up to and including this one.
-#}
{% macro column_names(relation, except=[], after=none, through=none) %}
    {%- if not execute -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set names = adapter.get_columns_in_relation(relation) | map(attribute='name') | list -%}
    {#- Not built yet (`dbt compile` or `docs generate` before a run): nothing to list, rather than an error. -#}
    {%- if not names -%}
        {{ return([]) }}
    {%- endif -%}
    {%- if through is not none -%}
        {%- set names = names[:names.index(through) + 1] -%}
    {%- endif -%}
    {%- if after is not none -%}
        {%- set names = names[names.index(after) + 1:] -%}
    {%- endif -%}
    {{ return(names | reject('in', except) | list) }}
{% endmacro %}


{#-
    The latest slice of a staging model whose every slice is a snapshot: each column but `loaded_at`, `ds` last.

    Args:
        relation: the staging model's `ref`.
-#}
{% macro latest_slice(relation) %}
    select
        {% for name in column_names(relation, except=['ds', 'loaded_at']) -%}
            {{ name }},
        {% endfor -%}
        ds

    from {{ relation }}
    where ds = (select max(ds) from {{ relation }})
{% endmacro %}


{#-
    Tweets summed over the slices per ``key``: slices that share an hour or a day hold disjoint parts of it.

    Args:
        relation: a tweets staging model's `ref`.
        key: the column to group by.
        latest_ds: whether to add `ds`, the latest slice holding the key.
-#}
{% macro tweets_summed_per(relation, key, latest_ds=false) %}
    select
        {{ key }},
        sum(tweets)::bigint as tweets{{ ",\n        max(ds) as ds" if latest_ds }}

    from {{ relation }}
    group by {{ key }}
{% endmacro %}

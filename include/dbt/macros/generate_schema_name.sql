{#-
    Metabase questions read `marts.<table>` by name, so a folder's `+schema` is used exactly as written instead of
    dbt's default `<target schema>_<custom schema>`. Models without one land in the target schema.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}

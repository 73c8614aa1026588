{#-
    Fails for every row whose value lies outside [min_value, max_value] (either bound optional; nulls are left to
    not_null). Written here in plain SQL rather than taken from dbt_utils because `dbt deps` needs dbt hub, which the
    build machines cannot reach.
-#}
{% test accepted_range(model, column_name, min_value=none, max_value=none) %}

select {{ column_name }}
from {{ model }}
where
    {%- if min_value is not none %} {{ column_name }} < {{ min_value }}{% endif %}
    {%- if min_value is not none and max_value is not none %} or{% endif %}
    {%- if max_value is not none %} {{ column_name }} > {{ max_value }}{% endif %}
    {%- if min_value is none and max_value is none %} false{% endif %}

{% endtest %}

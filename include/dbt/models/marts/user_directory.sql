{%- set users = ref('stg_users') -%}

with

users as (

    select * from {{ users }}

),

-- A run that sees a user again moves the user to its slice, and the serve DAG then reloads the slice the user left;
-- until that reload the user can be found in both, and the newer slice holds the current row.
ranked as (

    select
        *,
        row_number() over (partition by user_id order by ds desc) as slice_rank

    from users

),

directory as (

    select
        {{ column_names(users, except=['ds'], through='last_name') | join(',\n        ') }},
        nullif(concat_ws(' ', first_name, last_name), '') as full_name,
        {{ column_names(users, except=['ds', 'loaded_at'], after='last_name') | join(',\n        ') }},
        ds as last_seen_ds,
        loaded_at

    from ranked
    where slice_rank = 1

)

select * from directory

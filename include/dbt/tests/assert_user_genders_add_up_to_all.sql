-- Per users run, the per-gender rows should add up to the `all` row. A warning, not an error: whether the gold job
-- gives users without a gender a row of their own is its business, and a mismatch must not stop the marts.
{{ config(severity='warn') }}

with

statistics as (

    select * from {{ ref('stg_user_statistics') }}

),

per_run as (

    select
        ds,
        sum(case when gender = 'all' then users end) as all_users,
        sum(case when gender is distinct from 'all' then users end) as gender_users

    from statistics
    group by ds

)

select * from per_run
where all_users is distinct from gender_users

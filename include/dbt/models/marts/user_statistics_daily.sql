with

statistics as (

    select * from {{ ref('stg_user_statistics') }}

),

-- Each slice describes the users one run accepted, so every slice is kept: one row per run and gender.
daily as (

    select
        statistics.ds,
        statistics.gender,
        statistics.users,
        statistics.average_age,
        round(statistics.users::numeric / nullif(everyone.users, 0), 4) as share_of_users

    from statistics
    left join statistics as everyone on everyone.ds = statistics.ds and everyone.gender = 'all'

)

select * from daily

with

directory as (

    select * from {{ ref('user_directory') }}

),

groups as (

    select
        coalesce(nationality, 'unknown') as nationality,
        coalesce(gender, 'unknown') as gender,
        count(*)::bigint as users,
        round(avg(age), 2) as average_age,
        min(age) as min_age,
        max(age) as max_age

    from directory
    group by 1, 2

),

shares as (

    select
        *,
        round(users::numeric / sum(users) over (), 4) as share_of_users

    from groups

)

select * from shares

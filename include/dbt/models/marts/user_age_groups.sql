with

directory as (

    select age from {{ ref('user_directory') }}
    where age is not null

),

-- Ten-year groups, so the age distribution reads at a glance; empty groups between the youngest and the oldest are
-- rows with 0 users rather than gaps in the chart.
bounds as (

    select
        (min(age) / 10) * 10 as first_start,
        (max(age) / 10) * 10 as last_start

    from directory

),

groups as (

    select generate_series(first_start, last_start, 10) as age_group_start
    from bounds

),

counted as (

    select
        groups.age_group_start,
        groups.age_group_start || '-' || (groups.age_group_start + 9) as age_group,
        count(directory.age)::bigint as users

    from groups
    left join directory on directory.age between groups.age_group_start and groups.age_group_start + 9
    group by groups.age_group_start

)

select * from counted

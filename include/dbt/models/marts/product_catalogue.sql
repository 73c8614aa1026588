with

readings as (

    select * from {{ ref('stg_product_master') }}

),

-- A corrected file moves its readings to the run that read it again, and the serve DAG then reloads the slice
-- they left; until that reload a reading can be found in both, and the newer slice holds the corrected one.
current_readings as (

    select *
    from (
        select
            *,
            row_number() over (
                partition by department_name, sensor_serial, product_name, created_at order by ds desc
            ) as slice_rank
        from readings
    ) as ranked
    where slice_rank = 1

),

catalogue as (

    select
        department_name,
        product_name,
        count(distinct sensor_serial) as sensors,
        count(*) as readings,
        min(created_at) as first_seen_at,
        max(created_at) as last_seen_at,
        max(expires_at) as latest_expires_at,
        avg(shelf_life_days) as avg_shelf_life_days

    from current_readings
    group by department_name, product_name

)

select * from catalogue

with

figures as (

    select * from {{ ref('stg_products_expiring') }}

),

-- Each slice describes the whole master as of its run: the latest slice is the current picture.
latest as (

    select
        department_name,
        within_days,
        as_of,
        products,
        readings,
        ds

    from figures
    where ds = (select max(ds) from figures)

)

select * from latest

with

figures as (

    select * from {{ ref('stg_products_by_department') }}

),

-- Each slice describes the whole master as of its run: the latest slice is the current picture.
latest as (

    select
        department_name,
        day,
        products,
        sensors,
        readings,
        ds

    from figures
    where ds = (select max(ds) from figures)

)

select * from latest

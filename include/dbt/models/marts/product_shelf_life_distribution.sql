with

figures as (

    select * from {{ ref('stg_product_shelf_life') }}

),

-- Each slice describes the whole master as of its run: the latest slice is the current picture.
latest as (

    select
        shelf_life_days,
        readings,
        products,
        avg_shelf_life_days,
        ds

    from figures
    where ds = (select max(ds) from figures)

)

select * from latest

with

categories as (

    select * from {{ ref('stg_products_by_category') }}

),

-- Each slice describes the whole master as of its run: the latest slice is the current picture.
latest as (

    select
        category,
        currency,
        products,
        brands,
        avg_price,
        min_price,
        max_price,
        changed_products,
        last_updated_at,
        ds

    from categories
    where ds = (select max(ds) from categories)

)

select * from latest

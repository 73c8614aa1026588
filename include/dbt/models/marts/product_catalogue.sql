with

products as (

    select * from {{ ref('stg_product_master') }}

),

-- A changed product moves to its run's slice, and the serve DAG then reloads the slice it left; until that reload
-- it can be found in both, and the newer slice holds its current version.
ranked as (

    select
        *,
        row_number() over (partition by product_id order by ds desc, updated_at desc) as slice_rank

    from products

),

catalogue as (

    select
        product_id,
        product_name,
        category,
        brand,
        price,
        currency,
        updated_at,
        color,
        weight_kg,
        stock_quantity,
        ean,
        first_ds,
        ds as changed_ds,
        loaded_at

    from ranked
    where slice_rank = 1

)

select * from catalogue

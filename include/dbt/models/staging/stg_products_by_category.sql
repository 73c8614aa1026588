with

source as (

    select * from {{ gold_source('products_by_category', {
        'ds': 'date', 'category': 'text', 'currency': 'text', 'products': 'bigint', 'brands': 'bigint',
        'avg_price': 'numeric(12, 2)', 'min_price': 'numeric(12, 2)', 'max_price': 'numeric(12, 2)',
        'changed_products': 'bigint', 'last_updated_at': 'timestamptz', '_loaded_at': 'timestamptz'
    }) }} as gold_table

),

renamed as (

    select
        ds,
        category,
        currency,
        products,
        brands,
        avg_price,
        min_price,
        max_price,
        changed_products,
        last_updated_at,
        _loaded_at as loaded_at

    from source

)

select * from renamed

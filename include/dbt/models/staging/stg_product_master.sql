with

source as (

    select * from {{ gold_source('product_master', {
        'ds': 'date', 'product_id': 'text', 'name': 'text', 'category': 'text', 'brand': 'text',
        'price': 'numeric(12, 2)', 'currency': 'text', 'updated_at': 'timestamptz', 'color': 'text',
        'weight_kg': 'double precision', 'stock_quantity': 'bigint', 'ean': 'text', '_source_file': 'text',
        '_row_number': 'bigint', 'first_ds': 'date', '_loaded_at': 'timestamptz'
    }) }} as gold_table

),

renamed as (

    select
        ds,
        product_id,
        name as product_name,
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
        _source_file as source_file,
        _loaded_at as loaded_at

    from source

)

select * from renamed

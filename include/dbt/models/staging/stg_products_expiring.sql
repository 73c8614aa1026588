with

source as (

    select * from {{ gold_source('products_expiring', {
        'ds': 'date', 'department_name': 'text', 'within_days': 'integer', 'as_of': 'timestamp',
        'products': 'bigint', 'readings': 'bigint', '_loaded_at': 'timestamptz'
    }) }} as gold_table

),

renamed as (

    select
        ds,
        department_name,
        within_days,
        as_of,
        products,
        readings,
        _loaded_at as loaded_at

    from source

)

select * from renamed

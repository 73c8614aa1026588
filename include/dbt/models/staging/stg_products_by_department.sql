with

source as (

    select * from {{ gold_source('products_by_department', {
        'ds': 'date', 'department_name': 'text', 'day': 'date', 'products': 'bigint', 'sensors': 'bigint',
        'readings': 'bigint', '_loaded_at': 'timestamptz'
    }) }} as gold_table

),

renamed as (

    select
        ds,
        department_name,
        day,
        products,
        sensors,
        readings,
        _loaded_at as loaded_at

    from source

)

select * from renamed

with

source as (

    select * from {{ gold_source('product_master', {
        'ds': 'date', 'department_name': 'text', 'sensor_serial': 'text', 'product_name': 'text',
        'create_at': 'timestamp', 'product_expire': 'timestamp', 'shelf_life_days': 'double precision',
        '_source_file': 'text', '_loaded_at': 'timestamptz'
    }) }} as gold_table

),

renamed as (

    select
        ds,
        department_name,
        sensor_serial,
        product_name,
        create_at as created_at,
        product_expire as expires_at,
        shelf_life_days,
        _source_file as source_file,
        _loaded_at as loaded_at

    from source

)

select * from renamed

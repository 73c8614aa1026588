with

source as (

    select * from {{ gold_source('user_statistics', {
        'ds': 'date', 'gender': 'text', 'users': 'bigint', 'average_age': 'double precision',
        '_loaded_at': 'timestamptz'
    }) }} as gold_table

),

renamed as (

    select
        ds,
        gender,
        users,
        average_age,
        _loaded_at as loaded_at

    from source

)

select * from renamed

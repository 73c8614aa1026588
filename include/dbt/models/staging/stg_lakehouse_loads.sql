with

source as (

    select * from {{ source('gold', '_lakehouse_loads') }}

),

renamed as (

    select
        table_name,
        ds,
        snapshot_id,
        rows,
        duration_s,
        loaded_at

    from source

)

select * from renamed

with

loads as (

    select * from {{ ref('stg_lakehouse_loads') }}

),

final as (

    select
        table_name,
        ds,
        rows,
        snapshot_id,
        duration_s,
        loaded_at

    from loads

)

select * from final

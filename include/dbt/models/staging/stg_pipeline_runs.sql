with

source as (

    select * from {{ gold_source('pipeline_runs', {
        'ds': 'date', 'domain': 'text', 'source': 'text', 'bytes': 'bigint', 'lines': 'bigint',
        'extraction_s': 'double precision', 'raw_rows': 'bigint', 'accepted': 'bigint', 'duplicates': 'bigint',
        'rejects': 'bigint', 'status': 'text', '_loaded_at': 'timestamptz'
    }) }} as gold_table

),

renamed as (

    select
        ds,
        domain,
        source,
        bytes,
        lines,
        extraction_s,
        raw_rows,
        accepted,
        duplicates,
        rejects,
        status,
        _loaded_at as loaded_at

    from source

)

select * from renamed

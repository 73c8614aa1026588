with

runs as (

    select * from {{ ref('stg_pipeline_runs') }}

),

final as (

    select
        domain,
        ds,
        source,
        bytes,
        lines,
        raw_rows,
        accepted,
        duplicates,
        rejects,
        round(rejects::numeric / nullif(raw_rows, 0), 4) as reject_ratio,
        status,
        extraction_s as duration_s,
        loaded_at

    from runs

)

select * from final

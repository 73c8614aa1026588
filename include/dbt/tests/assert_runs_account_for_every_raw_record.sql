-- Nothing is lost silently: for every run, raw records = accepted + duplicates + rejects.
select domain, ds, raw_rows, accepted, duplicates, rejects
from {{ ref('pipeline_extractions') }}
where raw_rows <> accepted + duplicates + rejects

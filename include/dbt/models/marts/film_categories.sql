-- The catalogue is a snapshot per slice: the latest slice is the current one.
{{ latest_slice(ref('stg_films_per_category')) }}

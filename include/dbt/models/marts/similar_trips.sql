-- Each slice is a snapshot over every trip served as of its run: the latest slice is the current picture.
{{ latest_slice(ref('stg_trip_groups')) }}

-- Each slice describes the whole master as of its run: the latest slice is the current picture.
{{ latest_slice(ref('stg_products_expiring')) }}

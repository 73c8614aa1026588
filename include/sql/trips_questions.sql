-- The brief's two SQL questions, on the PostgreSQL copy of the gold layer (database `analytics`, table
-- gold.trips: every served slice, a trip being in one slice only). Run it with `psql -d analytics -f <this file>`.
-- The dbt marts marts.trips_top_regions_latest_datasource and marts.trips_datasource_regions hold the same answers,
-- and the REST API answers them on the TiDB copy (/v1/trips/top-regions/latest-datasource and
-- /v1/trips/datasources/cheap_mobile/regions). `datetime` is UTC (the feed's datetimes carry no zone).

-- 1. From the two most commonly appearing regions, which is the latest datasource?
--    The two regions with the most trips (ties by name), each with the datasource of its latest trip (ties by
--    datasource name), the first row being the most common region.
WITH top_regions AS (
    SELECT region, count(*) AS trips
    FROM gold.trips
    GROUP BY region
    ORDER BY trips DESC, region
    LIMIT 2
),
ranked AS (
    SELECT t.region, t.datasource, t.datetime,
           row_number() OVER (PARTITION BY t.region ORDER BY t.datetime DESC, t.datasource) AS position
    FROM gold.trips AS t
    JOIN top_regions AS r ON r.region = t.region
)
SELECT r.region, r.trips, k.datasource AS latest_datasource, k.datetime AS latest_at
FROM top_regions AS r
JOIN ranked AS k ON k.region = r.region AND k.position = 1
ORDER BY r.trips DESC, r.region;

-- 2. What regions has the cheap_mobile datasource appeared in?
SELECT region, count(*) AS trips, min(datetime) AS first_seen, max(datetime) AS last_seen
FROM gold.trips
WHERE datasource = 'cheap_mobile'
GROUP BY region
ORDER BY region;

-- Serving database for the gold layer: loaders write analytics.gold.<table>, dbt builds marts on it and
-- Metabase reads it. PostGIS is for the trips domain's point columns. Runs once, after 20-*.sh.
\connect analytics
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE SCHEMA IF NOT EXISTS gold;

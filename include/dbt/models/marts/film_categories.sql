with

categories as (

    select * from {{ ref('stg_films_per_category') }}

),

-- The catalogue is a snapshot per slice: the latest slice is the current one.
latest as (

    select max(ds) as ds from categories

),

current_categories as (

    select
        categories.category,
        categories.films,
        categories.ds

    from categories
    inner join latest on categories.ds = latest.ds

)

select * from current_categories

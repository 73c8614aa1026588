with

countries as (

    select * from {{ ref('stg_top_countries') }}

),

latest as (

    select max(ds) as ds from countries

),

-- Rentals and revenue belong to each slice's day, so they add up over slices; customers are a snapshot, so only
-- the latest slice's count is current.
totals as (

    select
        country,
        sum(rentals)::bigint as rentals,
        sum(revenue)::numeric(18, 2) as revenue,
        count(*)::bigint as days

    from countries
    group by country

),

current_customers as (

    select
        countries.country,
        countries.customers

    from countries
    inner join latest on countries.ds = latest.ds

),

ranked as (

    select
        totals.country,
        coalesce(current_customers.customers, 0)::bigint as customers,
        totals.rentals,
        totals.revenue,
        totals.days,
        (select ds from latest) as latest_ds,
        rank() over (
            order by coalesce(current_customers.customers, 0) desc, totals.revenue desc
        )::integer as country_rank

    from totals
    left join current_customers on totals.country = current_customers.country

)

select * from ranked

-- Within a slice a country never ranks behind one with fewer customers (ranking is by customers, then revenue).
select
    a.ds,
    a.country,
    a.country_rank,
    b.country as outranked_by_smaller,
    b.country_rank as smaller_rank

from {{ ref('stg_top_countries') }} as a
inner join {{ ref('stg_top_countries') }} as b
    on a.ds = b.ds and a.customers > b.customers and a.country_rank >= b.country_rank

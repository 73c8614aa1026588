-- Returns a row (a failure) when the language shares do not add up to 1, allowing for numeric division's rounding.
select sum(share) as total_share
from {{ ref('tweet_languages') }}
having abs(sum(share) - 1) > 1e-9

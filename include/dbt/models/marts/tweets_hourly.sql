-- A data interval does not have to line up with UTC days, so two ds slices can both hold tweets of the same hour:
-- their counts are disjoint parts of that hour and add up.
{{ tweets_summed_per(ref('stg_tweets_per_hour'), 'hour_start', latest_ds=true) }}

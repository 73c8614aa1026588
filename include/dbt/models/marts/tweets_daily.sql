-- As for hours: slices that share a day hold disjoint parts of it.
{{ tweets_summed_per(ref('stg_tweets_per_day'), 'day') }}

with

users as (

    select * from {{ ref('stg_users') }}

),

-- A run that sees a user again moves the user to its slice, and the serve DAG then reloads the slice the user left;
-- until that reload the user can be found in both, and the newer slice holds the current row.
ranked as (

    select
        *,
        row_number() over (partition by user_id order by ds desc) as slice_rank

    from users

),

directory as (

    select
        user_id,
        title,
        first_name,
        last_name,
        nullif(concat_ws(' ', first_name, last_name), '') as full_name,
        gender,
        email,
        username,
        date_of_birth,
        age,
        nationality,
        street,
        city,
        state,
        country,
        postcode,
        latitude,
        longitude,
        timezone_offset,
        registered_at,
        phone,
        cell,
        picture_url,
        first_ds,
        ds as last_seen_ds,
        loaded_at

    from ranked
    where slice_rank = 1

)

select * from directory

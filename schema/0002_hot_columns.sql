-- Report speed. Every funnel query reads ts, visitor_id and user_id for every event, and
-- path is the most common rule field: LZ4 decompresses several times faster than ZSTD, for
-- about 30% more disk on these columns. Codec changes apply to new parts and merges.
ALTER TABLE {{ local_table('events') }} {{ on_cluster }}
    MODIFY COLUMN ts DateTime64(3, 'UTC') CODEC(Delta, LZ4),
    MODIFY COLUMN visitor_id String CODEC(LZ4),
    MODIFY COLUMN user_id String CODEC(LZ4),
    MODIFY COLUMN path String CODEC(LZ4);

-- Whether the event carries any marketing touch (the first-touch attribution's filter),
-- stored once at insert instead of comparing seven columns on every report.
ALTER TABLE {{ local_table('events') }} {{ on_cluster }}
    ADD COLUMN IF NOT EXISTS touch UInt8 MATERIALIZED
        utm_campaign != '' OR source != '' OR medium != '' OR utm_term != ''
        OR utm_content != '' OR click_id != '' OR referrer != '';

{% if cluster %}
ALTER TABLE events {{ on_cluster }}
    ADD COLUMN IF NOT EXISTS touch UInt8 MATERIALIZED
        utm_campaign != '' OR source != '' OR medium != '' OR utm_term != ''
        OR utm_content != '' OR click_id != '' OR referrer != '';
{% endif %}

-- Existing parts compute the column on read until this (background) rewrite stores it.
ALTER TABLE {{ local_table('events') }} {{ on_cluster }} MATERIALIZE COLUMN touch;

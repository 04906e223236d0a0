-- The raw event log. Written only by the collector's batch writer (and `funnel import`/`demo`);
-- the stage engine reads it and never rewrites it.
-- Replacing engine + event_id in the key: a replayed or re-imported event collapses on merge,
-- on top of insert dedup tokens and the import's id check.
CREATE TABLE IF NOT EXISTS {{ local_table('events') }} {{ on_cluster }}
(
    site_id           LowCardinality(String),
    event_id          UUID,
    type              LowCardinality(String),
    name              LowCardinality(String),
    ts                DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    received_at       DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    clock_skewed      UInt8,
    visitor_id        String CODEC(ZSTD(1)),
    session_id        String CODEC(ZSTD(1)),
    user_id           String CODEC(ZSTD(1)),
    url               String CODEC(ZSTD(3)),
    host              LowCardinality(String),
    path              String CODEC(ZSTD(3)),
    query             String CODEC(ZSTD(3)),
    title             String CODEC(ZSTD(3)),
    referrer          String CODEC(ZSTD(3)),
    referrer_host     LowCardinality(String),
    source            LowCardinality(String),
    medium            LowCardinality(String),
    utm_source        LowCardinality(String),
    utm_medium        LowCardinality(String),
    utm_campaign      LowCardinality(String),
    utm_term          String CODEC(ZSTD(3)),
    utm_content       LowCardinality(String),
    click_id          String CODEC(ZSTD(1)),
    click_id_type     LowCardinality(String),
    country           LowCardinality(String),
    region            LowCardinality(String),
    city              LowCardinality(String),
    browser           LowCardinality(String),
    os                LowCardinality(String),
    device            LowCardinality(String),
    screen_width      UInt16,
    language          LowCardinality(String),
    element_tag       LowCardinality(String),
    element_text      String CODEC(ZSTD(3)),
    element_href      String CODEC(ZSTD(3)),
    element_id        String CODEC(ZSTD(1)),
    element_selector  String CODEC(ZSTD(3)),
    outbound          UInt8,
    props             Map(LowCardinality(String), String) CODEC(ZSTD(3)),
    value             Float64,
    INDEX idx_event_id event_id TYPE bloom_filter(0.001) GRANULARITY 4,
    INDEX idx_name name TYPE set(256) GRANULARITY 4
)
ENGINE = {{ engine('ReplacingMergeTree', 'events') }}
PARTITION BY toYYYYMM(ts)
ORDER BY (site_id, visitor_id, ts, event_id)
SETTINGS non_replicated_deduplication_window = 10000;

{% if cluster %}
CREATE TABLE IF NOT EXISTS events {{ on_cluster }} AS {{ local_table('events') }}
ENGINE = Distributed({{ cluster_literal }}, currentDatabase(), {{ local_table('events') }}, cityHash64(site_id, visitor_id));
{% endif %}

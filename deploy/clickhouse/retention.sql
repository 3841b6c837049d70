-- Retention of sealwatch.events (schema.sql): whole UTC days, dropped as partitions.
--
-- ClickHouse 18.16 has no TTL, so schema.sql sets none; on every release, run daily:
--   for id in $(clickhouse-client --query "<expired_partitions, {days} replaced>"); do
--     clickhouse-client --query "<drop_partition, {partition_id} replaced by '$id'>"
--   done
-- On ClickHouse 19.6 and later the server can do it instead: run `ttl` once.
-- Placeholders as in queries.sql: `{days}` is a number. Tests run these against a real server.

-- name: expired_partitions
-- Day partitions (ids YYYYMMDD, UTC) wholly older than {days} days.
SELECT DISTINCT partition_id
FROM system.parts
WHERE database = 'sealwatch' AND table = 'events' AND active
  AND partition_id < toString(toYYYYMMDD(now() - INTERVAL {days} DAY, 'UTC'))
ORDER BY partition_id;

-- name: drop_partition
-- Drops one day: {partition_id} is an id from expired_partitions, as a quoted string.
ALTER TABLE sealwatch.events DROP PARTITION ID {partition_id};

-- name: ttl
-- ClickHouse 19.6 and later only (18.16 rejects the TTL syntax): drop rows {days} days old.
ALTER TABLE sealwatch.events MODIFY TTL time + INTERVAL {days} DAY;

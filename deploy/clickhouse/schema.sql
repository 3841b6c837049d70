-- sealwatch events in ClickHouse: one row per JSON line of the daemon (stdout or --file).
--
-- Loading: ship each line as it is, as a string in a field named `line`, one JSONEachRow row per
-- line, into sealwatch.ingest (what Fluent Bit or Vector do with a raw log line):
--   INSERT INTO sealwatch.ingest FORMAT JSONEachRow
--   {"line":"{\"schema\":\"sealwatch.event/v1\",\"time\":\"2026-12-07T14:50:01.123456789Z\",...}"}
-- sealwatch.ingest keeps nothing (Null engine); the materialized view below turns every inserted
-- line into a typed row of sealwatch.events, so the mapping lives here, next to the table, and
-- not in each shipper's configuration.
--
-- Runs on ClickHouse 18.16 (Debian 12's package) and on current releases: no DateTime64, no
-- JSONExtract*, no Map, no LowCardinality, no TTL clause (18.16 has none: see retention.sql).
-- Run it with `clickhouse-client --multiquery < schema.sql`.

CREATE DATABASE IF NOT EXISTS sealwatch;

CREATE TABLE IF NOT EXISTS sealwatch.ingest (line String) ENGINE = Null;

-- Absent fields are empty strings (or 0): a host process has no container, an exec outside a
-- session no session_id, a line without violation no rule. Filter with `rule != ''`.
CREATE TABLE IF NOT EXISTS sealwatch.events
(
    time DateTime('UTC'),        -- seconds of `time`, UTC
    time_ns UInt32,              -- nanoseconds within that second
    node String,
    kind String,                 -- exec, file, session, loss, connect, accept, listen
    rule String,                 -- violation.rule
    severity String,             -- violation.severity
    repeats UInt32,              -- violation.repeats: identical violations held back (0: none)
    container_id String,
    container_name String,
    image String,
    pod_namespace String,
    pod_name String,
    pid UInt32,
    exe String,
    args String,                 -- process.args as its JSON array text
    session_id String,
    file_path String,
    file_op String,
    line String                  -- the whole line, for every field not typed here
)
ENGINE = MergeTree
PARTITION BY toDate(time)        -- one partition per UTC day: retention drops whole days
ORDER BY (node, time, time_ns);

-- How the fields are found, without JSON functions 18.16 lacks. visitParamExtract*(s, 'k')
-- decodes the value of the FIRST `"k":` anywhere in s, at any depth. A key is scoped to its
-- object by starting the search where that object starts: extract(line, '"process":([{].*)')
-- is the text from process's `{` to the end of the line, so its first `"pid":` is process.pid.
-- This holds because every key looked up is a required field of its object and no object nests
-- one of the same name before it (container.name comes before container.pod), and because the
-- top-level `time`, `node` and `kind` come before any object. A string value (a file name, an
-- argument) cannot forge a key: inside a JSON string every `"` is written `\"`, so the
-- sequence `"key":` never occurs in one.
-- (Not visitParamExtractRaw to cut out the object: on 18.16 it returns '' for an object whose
-- strings contain `{`, `[` or end in an escaped backslash, as argv and file names do.)
CREATE MATERIALIZED VIEW IF NOT EXISTS sealwatch.events_from_ingest TO sealwatch.events AS
SELECT
    toDateTimeOrZero(concat(substring(visitParamExtractString(line, 'time'), 1, 10), ' ',
                            substring(visitParamExtractString(line, 'time'), 12, 8)), 'UTC') AS time,
    toUInt32OrZero(substring(visitParamExtractString(line, 'time'), 21, 9)) AS time_ns,
    visitParamExtractString(line, 'node') AS node,
    visitParamExtractString(line, 'kind') AS kind,
    visitParamExtractString(extract(line, '"violation":([{].*)'), 'rule') AS rule,
    visitParamExtractString(extract(line, '"violation":([{].*)'), 'severity') AS severity,
    toUInt32(visitParamExtractUInt(extract(line, '"violation":([{].*)'), 'repeats')) AS repeats,
    visitParamExtractString(extract(line, '"container":([{].*)'), 'id') AS container_id,
    visitParamExtractString(extract(line, '"container":([{].*)'), 'name') AS container_name,
    visitParamExtractString(extract(line, '"container":([{].*)'), 'image') AS image,
    visitParamExtractString(extract(line, '"pod":([{].*)'), 'namespace') AS pod_namespace,
    visitParamExtractString(extract(line, '"pod":([{].*)'), 'name') AS pod_name,
    toUInt32(visitParamExtractUInt(extract(line, '"process":([{].*)'), 'pid')) AS pid,
    visitParamExtractString(extract(line, '"process":([{].*)'), 'exe') AS exe,
    -- The array of JSON strings after `"args":` (a string may hold `]`, `"` escaped as `\"`).
    extract(line, '"args":(\\[(?:[^\\]"]|"(?:[^"\\\\]|\\\\.)*")*\\])') AS args,
    visitParamExtractString(extract(line, '"session":([{].*)'), 'id') AS session_id,
    visitParamExtractString(extract(line, '"file":([{].*)'), 'path') AS file_path,
    visitParamExtractString(extract(line, '"file":([{].*)'), 'op') AS file_op,
    line
FROM sealwatch.ingest;

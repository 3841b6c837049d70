-- Questions teams ask across nodes, over sealwatch.events (schema.sql).
--
-- Each query follows a `-- name: <query_name>` line and a one-line description. A placeholder
-- `{name}` stands for one SQL literal that whoever runs the query puts there: a text value as a
-- single-quoted string with `\` and `'` escaped by a backslash ('localhost/web:1'), a number as
-- is. (Not ClickHouse's `{name:Type}` query parameters: 18.16 has none.) Tests run every query
-- here against a real server: tests/tests/fleet_clickhouse.rs.
--
-- Runs on ClickHouse 18.16 and on current releases. Times are UTC; `time_ns` orders the events
-- of one second. A violation of one event breaking two rules is two lines, one per rule, so
-- per-program questions use DISTINCT or count execs, not lines.

-- name: violations_last_hour
-- Violations of the last hour by node and rule: lines, and occurrences (held-back repeats included).
SELECT node, rule, severity, count() AS lines, sum(1 + repeats) AS occurrences
FROM sealwatch.events
WHERE time >= now() - INTERVAL 1 HOUR AND rule != ''
GROUP BY node, rule, severity
ORDER BY occurrences DESC, node, rule;

-- name: session_commands
-- Every program run in one session, in the order it ran: what was done after a login.
SELECT DISTINCT time, time_ns, node, pid, exe, args
FROM sealwatch.events
WHERE session_id = {session_id} AND kind = 'exec'
ORDER BY time, time_ns, pid;

-- name: image_activity
-- What the containers of one image did on every node: events by kind, rule, program and file.
SELECT node, kind, rule, exe, file_path,
       count() AS lines, uniqExact(container_id) AS containers, min(time) AS first, max(time) AS last
FROM sealwatch.events
WHERE image = {image}
GROUP BY node, kind, rule, exe, file_path
ORDER BY node, kind, rule, exe, file_path;

-- name: first_sighting
-- When, where and in which image one executable first ran, and how widely it has run since.
SELECT exe, first_time, first_time_ns, first_node, first_container_id, first_image, nodes, execs
FROM
(
    SELECT exe,
           argMin((time, time_ns, node, container_id, image), (time, time_ns)) AS first,
           first.1 AS first_time, first.2 AS first_time_ns, first.3 AS first_node,
           first.4 AS first_container_id, first.5 AS first_image,
           uniqExact(node) AS nodes, uniqExact(node, pid, time, time_ns) AS execs
    FROM sealwatch.events
    WHERE kind = 'exec' AND exe = {exe}
    GROUP BY exe
);

-- name: new_executables
-- Executables first run anywhere in the fleet within the last day, newest first, with where.
SELECT exe, first_time, first_time_ns, first_node, first_image, nodes, execs
FROM
(
    SELECT exe,
           argMin((time, time_ns, node, image), (time, time_ns)) AS first,
           first.1 AS first_time, first.2 AS first_time_ns, first.3 AS first_node,
           first.4 AS first_image,
           uniqExact(node) AS nodes, uniqExact(node, pid, time, time_ns) AS execs
    FROM sealwatch.events
    WHERE kind = 'exec'
    GROUP BY exe
)
WHERE first_time >= now() - INTERVAL 1 DAY
ORDER BY first_time DESC, first_time_ns DESC, exe;

-- name: logins_last_day
-- Every login into a container or a node in the last day (the lines of the login rules), newest first.
SELECT time, time_ns, node, rule, severity, container_id, container_name, image,
       pod_namespace, pod_name, session_id, exe, args
FROM sealwatch.events
WHERE time >= now() - INTERVAL 1 DAY
  AND rule IN ('container-exec', 'interactive-session-in-container', 'node-interactive-login')
ORDER BY time DESC, time_ns DESC, node;

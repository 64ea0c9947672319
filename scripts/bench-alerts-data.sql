-- Fills an ELSE database (schema migrated) with what the alert rules read, for
-- scripts/bench-alerts.sh: :messages messages over :days days ending now, on two MX and two relays,
-- shaped like the dashboard benchmark's traffic (docs/benchmarks.md).
--
--   psql -v messages=10000000 -v days=30 -f scripts/bench-alerts-data.sql URL
--
-- The rules read `deliveries` (their window, and the finished hours the destination rule rolls),
-- the rollups `traffic_hourly`, `greylist_triplets`, `snmp_samples` and `servers`; nothing else is
-- generated (no `messages`, `recipients`, raw lines: no rule reads them). Every delivery attempt of
-- the :days days is generated, not only the ones a cycle reads, so indexes and partitions have
-- their real sizes.
--
-- Deliveries: per message 1.2 recipients on average (20 % have two); half inbound, delivered over
-- LMTP to the mailbox servers for the organisation's 300 domains, half outbound over SMTP to 30 000
-- outside domains (log-uniform: a few big providers, a long tail); 7 % deferred once before their
-- delivery, 3 % bounced. In the last 30 minutes, w1.example (the biggest provider) defers 60 % of
-- out1's attempts with a Yahoo-style reputation reply: the destination and blocklist rules find it,
-- so a cycle also pays for its findings.

\set ON_ERROR_STOP on
SET client_min_messages = warning;
SELECT setseed(0.2020);

INSERT INTO servers (name, role, first_seen, last_seen)
SELECT name, role, now() - (:days || ' days')::interval, now()
FROM (VALUES ('mx1', 'incoming'), ('mx2', 'incoming'), ('out1', 'outgoing'), ('out2', 'outgoing')) v(name, role)
ON CONFLICT (name) DO UPDATE SET first_seen = EXCLUDED.first_seen, last_seen = EXCLUDED.last_seen;

-- The daily partitions the writer would have made.
SELECT format('CREATE TABLE IF NOT EXISTS %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
              t || '_p' || to_char(d, 'YYYYMMDD'), t, d, d + interval '1 day')
FROM generate_series(date_trunc('day', now() - (:days || ' days')::interval, 'UTC'),
                     date_trunc('day', now(), 'UTC') + interval '1 day', interval '1 day') AS d,
     unnest(ARRAY['deliveries', 'snmp_samples']) AS t
\gexec

-- Deliveries, one day at a time (progress shows; no transaction holds every row).
SELECT format($day$
    WITH m AS (
        SELECT i AS uid, %1$L::timestamptz + random() * interval '1 day' AS t,
               (ARRAY(SELECT id FROM servers WHERE name IN ('mx1', 'mx2', 'out1', 'out2') ORDER BY name))[1 + i %% 4] AS server_id,
               i %% 4 < 2 AS inbound, random() AS r1
        FROM generate_series(%2$s::bigint, %3$s::bigint) AS i
    ), r AS (
        SELECT m.*, j, random() AS r2,
               CASE WHEN inbound THEN 'p' || floor(exp(random() * ln(100000)))::int || '@corp' || floor(exp(random() * ln(300)))::int || '.example'
                    ELSE 'u' || floor(exp(random() * ln(200000)))::int || '@w' || floor(exp(random() * ln(30000)))::int || '.example' END AS rcpt
        FROM m CROSS JOIN LATERAL generate_series(1, 1 + (m.r1 < 0.2)::int) AS j
    ), a AS (
        -- The final attempt of each recipient, and a deferral 5 minutes before it for 7 %%.
        SELECT *, false AS deferral FROM r
        UNION ALL
        SELECT *, true FROM r WHERE r2 >= 0.03 AND r2 < 0.10
    )
    INSERT INTO deliveries (ts, line_key, message_uid, message_started_at, server_id, queue_id, daemon, recipient,
                            relay, delay, dsn, status, status_text, queued_as)
    SELECT least(t + CASE WHEN deferral THEN 1 ELSE 301 END * interval '1 second', %1$L::timestamptz + interval '86399 seconds'),
           uid * 8 + j * 2 + deferral::int, uid, t, server_id, upper(to_hex(uid)),
           CASE WHEN inbound THEN 'lmtp' ELSE 'smtp' END, rcpt,
           CASE WHEN inbound THEN 'lmtp.corp.example[10.0.0.' || (1 + uid %% 4) || ']:24'
                ELSE 'mx.' || split_part(rcpt, '@', 2) || '[192.0.2.' || (1 + uid %% 250) || ']:25' END,
           CASE WHEN deferral THEN 1 ELSE 301 END,
           CASE WHEN deferral THEN '4.4.1' WHEN r2 < 0.03 THEN '5.1.1' ELSE '2.0.0' END,
           CASE WHEN deferral THEN 'deferred' WHEN r2 < 0.03 THEN 'bounced' ELSE 'sent' END,
           CASE WHEN deferral THEN (ARRAY['connect to mx.' || split_part(rcpt, '@', 2) || '[192.0.2.1]:25: Connection timed out',
                                          '451 4.7.1 Greylisted, try again later',
                                          '421 4.7.0 Too many connections'])[1 + (uid %% 3)::int]
                WHEN r2 < 0.03 THEN '550 5.1.1 <' || rcpt || '>: Recipient address rejected: User unknown'
                WHEN inbound THEN '250 2.0.0 <' || uid || '@gen.example> Saved'
                ELSE '250 2.0.0 Ok: queued as ' || upper(to_hex(uid * 7919)) END,
           CASE WHEN NOT deferral AND r2 >= 0.03 AND NOT inbound THEN upper(to_hex(uid * 7919)) END
    FROM a
$day$, d, (n * per_day) + 1, (n + 1) * per_day)
FROM (SELECT (:messages / :days)::bigint AS per_day) AS p,
     generate_series(0, :days - 1) AS n,
     LATERAL (SELECT date_trunc('day', now() - ((:days - 1 - n) || ' days')::interval, 'UTC') AS d) AS day
\gexec

-- Today's generated day runs to midnight: what lies in the future is not logged yet.
DELETE FROM deliveries WHERE ts > now();

-- The episode: out1's attempts to w1.example in the last 30 minutes, 60 % deferred by reputation.
INSERT INTO deliveries (ts, line_key, message_uid, message_started_at, server_id, queue_id, daemon, recipient, relay,
                        delay, dsn, status, status_text)
SELECT now() - random() * interval '30 minutes', 9000000000000 + i, 900000000 + i, now() - interval '31 minutes',
       (SELECT id FROM servers WHERE name = 'out1'), upper(to_hex(900000000 + i)), 'smtp',
       'u' || i || '@w1.example', 'mx.w1.example[192.0.2.1]:25', 2,
       CASE WHEN i % 5 < 3 THEN '4.7.0' ELSE '2.0.0' END, CASE WHEN i % 5 < 3 THEN 'deferred' ELSE 'sent' END,
       CASE WHEN i % 5 < 3 THEN '421 4.7.0 [TSS04] Messages from 192.0.2.10 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes'
            ELSE '250 2.0.0 Ok: queued as ' || upper(to_hex(i)) END
FROM generate_series(1, 400) i;

-- traffic_hourly as the rollups make it: per hour, server and flow, once over all domains and once
-- per group domain of 100 (`by_domain`); received, delivered, deferred, bounced, rejected.
INSERT INTO traffic_hourly (hour, server_id, flow, by_domain, domain, metric, messages, bytes)
SELECT h, s.id, CASE WHEN s.role = 'incoming' THEN 'inbound' ELSE 'outbound' END, k.by_domain, k.domain, x.metric,
       greatest(1, round(x.share * k.weight * (:messages / :days / 24 / 4) * (0.8 + 0.4 * random())))::bigint,
       greatest(1, round(x.share * k.weight * (:messages / :days / 24 / 4) * 20000))::bigint
FROM generate_series(date_trunc('hour', now() - (:days || ' days')::interval), date_trunc('hour', now()), interval '1 hour') h
CROSS JOIN servers s
CROSS JOIN LATERAL (SELECT false AS by_domain, '' AS domain, 1.0 AS weight
                    UNION ALL
                    SELECT true, 'corp' || n || '.example', 0.3 / n FROM generate_series(1, 100) n) k
CROSS JOIN (VALUES ('received', 1.0), ('delivered', 1.1), ('deferred', 0.084), ('bounced', 0.036), ('rejected', 0.4)) x(metric, share)
WHERE s.name IN ('mx1', 'mx2', 'out1', 'out2') AND NOT (s.role = 'outgoing' AND x.metric = 'rejected')
ON CONFLICT DO NOTHING;

-- Greylisting on the MX: 20 000 new triplets a day from 30 000 sender domains, 85 % retried.
INSERT INTO greylist_triplets (client_net, sender, recipient, first_seen, last_seen, passed_at, attempts)
SELECT host('198.18.0.0'::inet + (i % 65536)) || '/24', 's' || i || '@w' || floor(exp(random() * ln(30000)))::int || '.example',
       'p' || (i % 100000) || '@corp' || (i % 300) || '.example', t, t + interval '5 minutes',
       CASE WHEN random() < 0.85 THEN t + interval '5 minutes' END, 1 + (random() < 0.85)::int
FROM (SELECT i, now() - random() * (:days || ' days')::interval AS t
      FROM generate_series(1, 20000 * :days) i) g
ON CONFLICT DO NOTHING;

-- Each server's SNMP agent, polled every minute.
INSERT INTO snmp_agents (server_id, host, version, read_user, control_user, secrets)
SELECT id, '127.0.0.1', '3', 'ro', 'ctl', '\x00' FROM servers WHERE name IN ('mx1', 'mx2', 'out1', 'out2')
ON CONFLICT DO NOTHING;
INSERT INTO snmp_samples (ts, server_id, reachable, active_count, deferred_count, hold_count, incoming_count,
                          master_alive, state)
SELECT ts, s.id, true, (random() * 20)::int, (random() * 100)::int, 0, 0, true, 'ok'
FROM generate_series(date_trunc('minute', now() - (:days || ' days')::interval), now(), interval '1 minute') ts
CROSS JOIN servers s WHERE s.name IN ('mx1', 'mx2', 'out1', 'out2');

ANALYZE deliveries;
ANALYZE traffic_hourly;
ANALYZE greylist_triplets;
ANALYZE snmp_samples;

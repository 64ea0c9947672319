-- Fills an ELSE database (schema migrated) with generated messages and recipients for
-- scripts/bench-search.sh: :messages messages over :days days ending now, on four servers,
-- skewed like real mail (few big domains, many small ones; most messages to one recipient),
-- and :refusals refusals per message (`NOQUEUE: reject:` at RCPT, a fifth of them temporary),
-- which every search reads beside the messages.
--
--   psql -v setup=true  -v messages=N -v days=D -f scripts/bench-search-data.sql URL   # once
--   psql -v setup=false -v messages=N -v days=D -v refusals=R -v worker=W -v workers=K -f … URL
--                                                                   # W in 0..K, R: 0.5 for half
--
-- The setup run makes the servers and the daily partitions; each worker then fills the days
-- whose number is W modulo K, so that K sessions fill the database on K cores. No ANALYZE at the
-- end: the benchmark measures the database as a load leaves it first (autovacuum catching up),
-- then after its own VACUUM ANALYZE.

\set ON_ERROR_STOP on
SET client_min_messages = warning;

\if :setup
INSERT INTO servers (name, role) VALUES ('mx1', 'incoming'), ('mx2', 'incoming'), ('out1', 'outgoing'), ('out2', 'outgoing')
ON CONFLICT (name) DO NOTHING;

-- The daily partitions the writer would have made.
SELECT format('CREATE TABLE IF NOT EXISTS %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
              t || '_p' || to_char(d, 'YYYYMMDD'), t, d, d + interval '1 day')
FROM generate_series(date_trunc('day', now() - (:days || ' days')::interval), date_trunc('day', now()), interval '1 day') AS d,
     unnest(ARRAY['messages', 'recipients', 'rejects']) AS t
\gexec
\else
SELECT setseed(0.42 / (1 + :worker));

-- A skewed address: `u<n>@d<m>.example`, n and m drawn with more weight on small numbers.
CREATE OR REPLACE FUNCTION pg_temp.address(r1 double precision, r2 double precision) RETURNS text
    LANGUAGE sql IMMUTABLE
    RETURN 'u' || floor(20000 * r1 ^ 2)::int || '@d' || floor(5000 * r2 ^ 3)::int || '.example';

-- One day at a time, each in its own transaction: progress shows, and no transaction holds all
-- the rows. Recipients: one for most messages, two for some, five for a few; an original address
-- for 5 % (a volatile select list keeps the subquery apart, so each row draws its own address).
SELECT format($day$
    WITH base AS (
        SELECT i, %1$L::timestamptz + (random() * interval '1 day') AS t, random() AS r
        FROM generate_series(%2$s::bigint, %3$s::bigint) AS i
    )
    INSERT INTO messages (started_at, uid, server_id, queue_id, first_seen, last_seen, sender, size, nrcpt,
                          message_id, client_name, client_ip, origin, flow, state, closed, version)
    SELECT t, i, (ARRAY(SELECT id FROM servers WHERE name IN ('mx1', 'mx2', 'out1', 'out2') ORDER BY name))[1 + i %% 4],
           upper(lpad(to_hex(i * 2654435761 %% 1099511627776), 10, '0')),
           t, t + (r * 5) * interval '1 second',
           CASE WHEN r < 0.02 THEN '' ELSE pg_temp.address(random(), random()) END,
           (1000 + 200000 * random() ^ 4)::bigint, 1,
           md5(i::text) || '@mail' || (i %% 97) || '.example',
           'client' || (i %% 5000) || '.example.net', '198.18.0.0'::inet + (i %% 131072),
           'smtpd', (ARRAY['inbound','inbound','outbound','outbound'])[1 + i %% 4],
           CASE WHEN r < 0.90 THEN 'sent' WHEN r < 0.95 THEN 'deferred' WHEN r < 0.98 THEN 'bounced' ELSE 'expired' END,
           true, 1
    FROM base;
    INSERT INTO recipients (message_started_at, message_uid, address, orig_address, status, dsn, relay,
                            status_text, delay, attempts, last_attempt_at, flow)
    SELECT started_at, uid, address,
           CASE WHEN random() < 0.05 THEN 'alias' || (uid %% 1000) || '@' || split_part(address, '@', 2) END,
           state, '2.0.0', 'mx.example[192.0.2.1]:25', '250 2.0.0 Ok', random() * 3, 1, last_seen, flow
    FROM (SELECT m.started_at, m.uid, m.state, m.last_seen, m.flow, pg_temp.address(random(), random()) AS address
          FROM messages m
          CROSS JOIN LATERAL generate_series(1, CASE WHEN m.uid %% 10 = 0 THEN 5 WHEN m.uid %% 3 = 0 THEN 2 ELSE 1 END) AS j
          WHERE m.started_at >= %1$L AND m.started_at < %1$L::timestamptz + interval '1 day'
            AND m.uid BETWEEN %2$s AND %3$s) AS x
    ON CONFLICT DO NOTHING;
    INSERT INTO rejects (ts, line_key, server_id, program, action, source, stage, client_name, client_ip,
                         code, enhanced, reason, sender, recipient, proto, helo)
    SELECT t, i, (ARRAY(SELECT id FROM servers WHERE name IN ('mx1', 'mx2') ORDER BY name))[1 + i %% 2],
           'postfix/smtpd', 'reject', 'smtpd', 'RCPT',
           'client' || (i %% 5000) || '.example.net', '198.18.0.0'::inet + (i %% 131072),
           CASE WHEN r < 0.2 THEN 450 ELSE 550 END, CASE WHEN r < 0.2 THEN '4.7.1' ELSE '5.1.1' END,
           CASE WHEN r < 0.2 THEN 'Recipient address rejected: Greylisted'
                ELSE 'Recipient address rejected: User unknown in local recipient table' END,
           pg_temp.address(random(), random()), pg_temp.address(random(), random()), 'ESMTP',
           'client' || (i %% 5000) || '.example.net'
    FROM (SELECT i, %1$L::timestamptz + (random() * interval '1 day') AS t, random() AS r
          FROM generate_series(%2$s::bigint, %2$s::bigint + ((%3$s::bigint - %2$s::bigint) * %4$s)::bigint) AS i) AS x
$day$, d, (n * per_day) + 1, (n + 1) * per_day, :refusals::float8)
FROM (SELECT (:messages / :days)::bigint AS per_day) AS p,
     generate_series(0, :days - 1) AS n,
     LATERAL (SELECT date_trunc('day', now() - ((:days - n) || ' days')::interval) AS d) AS day
WHERE n % :workers = :worker
\gexec
\endif

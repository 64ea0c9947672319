-- ELSE schema, version 7: the rollups behind the statistics screens.
--
-- Every rollup row is counted either once per event over all domains (`by_domain = false`,
-- `domain = ''`), which is what totals and an administrator's screens read, or once for each
-- *group domain* the event touches (`by_domain = true`: a message under its sender's domain and
-- each of its recipients' domains, when a group has that domain), which is what a domain filter
-- and a group's scope read. Only the groups' domains: the outside world's domains (tens of
-- thousands a day) would make the rollups as large as the events.

-- The domains of the groups (migration 5's group_domains, when it is there).
CREATE FUNCTION else_group_domains() RETURNS text[]
    LANGUAGE plpgsql STABLE
AS $$
BEGIN
    IF to_regclass('group_domains') IS NULL THEN
        RETURN '{}';
    END IF;
    RETURN ARRAY(SELECT DISTINCT domain FROM group_domains);
END
$$;

ALTER TABLE traffic_hourly ADD COLUMN by_domain boolean NOT NULL DEFAULT true;
ALTER TABLE traffic_hourly DROP CONSTRAINT traffic_hourly_pkey;
ALTER TABLE traffic_hourly ADD PRIMARY KEY (hour, server_id, flow, by_domain, domain, metric);
CREATE INDEX ON traffic_hourly (domain, hour) WHERE by_domain;

-- Counts by a key (a sender, a client, a reject code, a histogram bucket...) per hour of today:
-- `kind` says what the key is (see omelse's store::rollup for the list). Refreshed with
-- traffic_hourly; each hour keeps its top keys per group, the rest summed under '(other)'.
CREATE TABLE stats_hourly (
    kind      text NOT NULL,
    hour      timestamptz NOT NULL,
    server_id integer NOT NULL,
    flow      text NOT NULL,
    by_domain boolean NOT NULL,
    domain    text NOT NULL,
    key       text NOT NULL,
    messages  bigint NOT NULL,
    bytes     bigint NOT NULL,
    PRIMARY KEY (kind, hour, server_id, flow, by_domain, domain, key)
);
CREATE INDEX ON stats_hourly (hour, server_id);
CREATE INDEX ON stats_hourly (domain, kind, hour) WHERE by_domain;

-- The same per UTC day for the days past, summed from their hours once a day is over, so that a
-- 30-day screen reads 30 rows per key, not 720.
CREATE TABLE stats_daily (
    kind      text NOT NULL,
    day       timestamptz NOT NULL,
    server_id integer NOT NULL,
    flow      text NOT NULL,
    by_domain boolean NOT NULL,
    domain    text NOT NULL,
    key       text NOT NULL,
    messages  bigint NOT NULL,
    bytes     bigint NOT NULL,
    PRIMARY KEY (kind, day, server_id, flow, by_domain, domain, key)
);
CREATE INDEX ON stats_daily (domain, kind, day) WHERE by_domain;

-- The refresh reads postscreen's lines only, not every line of the hour.
CREATE INDEX ON log_events (ts) WHERE program LIKE '%postscreen';

-- Daily reports mailed to a group's chosen addresses (`elsed serve` sends them).
CREATE TABLE report_schedules (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- A group of the accounts (migration 5); no foreign key so that this migration stands alone.
    group_id     bigint NOT NULL,
    recipients   text[] NOT NULL CHECK (cardinality(recipients) > 0),
    -- The UTC hour of the day the previous day's report goes out.
    hour         integer NOT NULL CHECK (hour BETWEEN 0 AND 23),
    format       text NOT NULL DEFAULT 'text' CHECK (format IN ('text', 'html', 'json')),
    -- The last report day sent: a schedule sends each day once, whatever the number of daemons.
    last_sent_on date,
    last_error   text
);

-- Everything rolled up so far is recomputed with the new definitions.
INSERT INTO rollup_dirty (hour, server_id)
SELECT DISTINCT hour, server_id FROM traffic_hourly
ON CONFLICT DO NOTHING;

-- ELSE schema, version 13: what keeps one evaluation of every alert rule short over a month of a
-- big fleet (docs/benchmarks.md, "Alert rules").
--
-- The fleet-wide rows of traffic_hourly (`NOT by_domain`: one per hour, server, flow and metric)
-- are what the volume and reject-rate rules read, over weeks; among the per-domain rows they are a
-- few percent of the table, and the (hour) index made those rules read every row of the weeks.
CREATE INDEX traffic_hourly_fleet ON traffic_hourly (hour, server_id, flow, metric) WHERE NOT by_domain;

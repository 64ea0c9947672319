-- ELSE schema, version 9: else_domain without a regular expression.
--
-- The domain of an address is computed for every recipient and message the writer stores (three
-- expression indexes) and for every row the rollups read. The regular expression of migration 1
-- cost about 12 µs a call; split_part about 2 (docs/benchmarks.md, dense input). The result is
-- the same for every text, NULL included: the text after the last '@' in lower case, '' without
-- one. So the expression indexes built with the old definition stay valid.
CREATE OR REPLACE FUNCTION else_domain(address text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN strpos(address, '@') > 0
                THEN lower(split_part(address, '@', -1))
                ELSE '' END;

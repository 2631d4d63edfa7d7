-- Finishing many jobs in one transaction: one round trip and one commit (one WAL flush) for all
-- of them, instead of one each. Items are finished in tenant order, so two of these running at
-- once take the tenants' chain locks in the same order and cannot deadlock.
CREATE FUNCTION finish_dispatch_many(p_items jsonb) RETURNS boolean[] LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    item   jsonb;
    ord    integer;
    result boolean[] := array_fill(false, ARRAY[jsonb_array_length(p_items)]);
BEGIN
    FOR item, ord IN
        SELECT e.value, e.ordinality::integer
          FROM jsonb_array_elements(p_items) WITH ORDINALITY AS e
         ORDER BY e.value -> 'job' ->> 'tenant_id', e.ordinality
    LOOP
        result[ord] := finish_dispatch(item -> 'job', item -> 'receipt', item ->> 'event_type',
                                       item ->> 'prefix', item ->> 'suffix');
    END LOOP;
    RETURN result;
END $$;

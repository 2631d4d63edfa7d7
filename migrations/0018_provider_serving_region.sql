-- Where a provider processes or stores requests, as its documentation states it. Informational: it
-- is shown on the model objects and never decides `stack` (the jurisdiction of the company serving the
-- request, parent company included). NULL: no source read states it.
ALTER TABLE providers ADD COLUMN serving_region text;

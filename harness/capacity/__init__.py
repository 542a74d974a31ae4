"""``bench capacity``: the search and the trial verdict (:mod:`.search`), fresh trials (:mod:`.runner`), stepped
trials (:mod:`.stepped`) and ``capacity.json``, how it is built, written and read (:mod:`.results`). Its markdown,
plot and comparison are rendered by the report package, which imports this one (never the other way)."""

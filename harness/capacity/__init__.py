"""``bench capacity``: the search and the trial verdict (:mod:`.search`), fresh trials (:mod:`.runner`), stepped
trials (:mod:`.stepped`), ``capacity.json`` (:mod:`.results`), its markdown and plot (:mod:`.report`) and the
comparison of two capacity directories (:mod:`.compare`)."""

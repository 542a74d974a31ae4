"""What people read: ``bench report`` (:mod:`.document` puts the sections in order: :mod:`.results_tables`,
:mod:`.fairness`, :mod:`.faults_table`, :mod:`.sections`, with :mod:`.plots`), ``bench compare`` and its regression
gate (:mod:`.compare`; two ``bench capacity`` directories: :mod:`.capacity_compare`), ``bench history``
(:mod:`.history`), ``bench capacity``'s capacity.md and capacity.png, rendered from its stored capacity.json
(:mod:`.capacity`), the figures registry they share (:mod:`.figures`), the one markdown table helper
(:mod:`.markdown`) and the one chart helper (:mod:`.charts`)."""

"""What people read: ``bench report`` (:mod:`.document`, which puts in order the sections of :mod:`.results_tables`,
:mod:`.fairness`, :mod:`.faults_table` and :mod:`.sections`, and the plots of :mod:`.plots`), ``bench compare`` and
its regression gate (:mod:`.compare`), ``bench history`` (:mod:`.history`), the one chart helper (:mod:`.charts`) and
the one markdown table helper (:mod:`.markdown`)."""

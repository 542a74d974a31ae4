"""What people read: ``bench report`` (:mod:`.document`), ``bench compare`` and its regression gate
(:mod:`.compare`), ``bench history`` (:mod:`.history`) and the one chart helper (:mod:`.charts`)."""

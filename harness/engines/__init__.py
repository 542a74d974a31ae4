"""Stream processing engines behind one interface (:class:`harness.engines.base.Engine`)."""

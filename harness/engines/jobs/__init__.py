"""Job code that runs inside an engine's own process (one module per engine), given a JobSpec as JSON."""

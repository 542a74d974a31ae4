"""Process and JVM infrastructure: managed child processes and their guard (:mod:`.proc`, :mod:`._guard`), JVM
artifacts (:mod:`.jvm`), the Spark and Flink distributions (:mod:`.distributions`), CPU isolation
(:mod:`.isolation`) and local engine clusters (:mod:`.cluster`). Knows nothing of runs, results or reports."""

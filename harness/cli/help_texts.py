"""Long help texts of the command line, kept out of the command definitions."""

COMPARE_EXIT_CODES = """\b
Exit codes with --fail-on-regression (first that applies, in this order):
  2  usage error: bad arguments, or a directory that is not a readable run
  1  a regression, or the runs are not comparable: an engine of the baseline
     missing in CANDIDATE, CANDIDATE's run status not complete, a CANDIDATE
     repetition failed, interrupted, invalid or missing, different settings
     (duration, warmup, load, window, kafka, parallelism, engine + settings),
     or a different environment (CPU model, cores, versions) without
     --allow-env-change
  4  no baseline left (--skip-incomparable-baselines left out every one)
  3  cannot judge: an engine has no usable baseline repetition, or a
     compared figure has < 2 usable repetitions on a side
  0  no regression
Without --fail-on-regression: 0 (report only), or 2.
PCT is a finite number > 0 (nan, inf, 0 and negatives are refused, exit 2).

\b
Two capacity directories (bench capacity; A B, one baseline): per engine
the capacity A vs B, the change, and whether their ranges (the bracket; the
95 % CI with --repetitions) overlap: overlapping = no detectable change.
  2  usage error, or a capacity directory mixed with a run directory
  1  B's capacity lower by more than PCT and the ranges apart; or not
     comparable: an engine of A without capacity in B, B interrupted,
     other workload/trial/SLO settings, other environment (without
     --allow-env-change)
  3  cannot judge: A found no capacity for an engine, or B's search ended
     below A's capacity without the engine failing (load path, max, an
     unjudged trial: whether the engine holds A's rate is unknown)
  0  no regression"""
"""``bench compare --help``'s epilog: the exit codes of both kinds of comparison."""

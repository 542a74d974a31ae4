"""From what a repetition produced to its verdicts, pure: expected counts (:mod:`.oracle`), the judge
(:mod:`.judge`), arrived-late allowances (:mod:`.arrival`, :mod:`.input_delay`), percentiles
(:mod:`.histograms`), per-second series (:mod:`.series`), keep-up (:mod:`.keepup`), verdicts in words
(:mod:`.verdicts`), small statistics (:mod:`.stats`); :mod:`.repetition` puts them together."""

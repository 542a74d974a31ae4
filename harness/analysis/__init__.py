"""From what a repetition produced to its verdicts, pure: expected counts (:mod:`.oracle`), the judge
(:mod:`.judge`), arrived-late allowances (:mod:`.arrival`, :mod:`.input_delay`), per-second series
(:mod:`.series`), keep-up (:mod:`.keepup`), resource figures (:mod:`.resources`), fault figures
(:mod:`.fault_figures`), verdicts in words (:mod:`.verdicts`), small statistics (:mod:`.stats`);
:mod:`.repetition` puts them together. (Percentiles: :mod:`harness.histograms`, shared with the generator.)"""

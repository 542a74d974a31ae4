"""The run itself (``bench run``): the phases of one engine × repetition (:mod:`.runner`), the live result reader
(:mod:`.collector`), fault injection (:mod:`.faults`), resource sampling (:mod:`.resources`), the live display
(:mod:`.progress`) and ``bench perf`` (:mod:`.perf`). It writes results; it never renders a report."""

"""Search engines: each decides which configuration to try next and when to stop one; none
trains or logs (that is :mod:`search.study.trial`)."""

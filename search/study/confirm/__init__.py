"""Confirmation: the top-k policies and the baseline re-trained over fresh seeds, paired
intervals against the baseline, and test accuracy under a detector's boxes or none.

The search ranks policies by single, cheap runs; the answer a user takes home comes from here.
The test split never chooses: the winner is the best by confirmed *validation* mean; test
scores and intervals are reported.

- :mod:`.statistics`: estimates and paired intervals;
- :mod:`.model`: the :class:`~.model.Confirmation` value, its JSON and the verdict;
- :mod:`.boxes`: the test-time box levels;
- :mod:`.stage`: the stage that trains the runs (it imports the trial function, so the
  modules above stay importable without it).
"""

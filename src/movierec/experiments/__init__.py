"""Online experiments between registry versions: A/B tests and team-draft interleaving.

* :mod:`~movierec.experiments.assignment`: who sees which arm (a salted hash, no shared state);
* :mod:`~movierec.experiments.interleaving`: team-draft interleaving and its credit;
* :mod:`~movierec.experiments.stats`: per-arm figures and the significance tests;
* :mod:`~movierec.experiments.store`: experiments and their exposures in the ratings store;
* :mod:`~movierec.experiments.exposures`: what each experiment showed, logged off the request;
* :mod:`~movierec.experiments.outcomes`: exposures joined with later ratings, per arm;
* :mod:`~movierec.experiments.runner`: the serving side (which model answers a request);
* :mod:`~movierec.experiments.promotion`: a final, significant winner made champion;
* :mod:`~movierec.experiments.simulation`: replays of held-out future ratings (tests, benchmark).
"""

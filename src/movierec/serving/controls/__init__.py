"""What a person controls in their recommendations, applied after the model ranks.

* :mod:`~movierec.serving.controls.ranking`: ``exclude`` lists, dismissed movies and their
  neighbours, MMR ``diversity`` and pages without repeats, over one ranking;
* :mod:`~movierec.serving.controls.cursor`: the opaque page cursor;
* :mod:`~movierec.serving.controls.dismissals`: dismissals, stored and shared by the workers;
* :mod:`~movierec.serving.controls.group`: one list for a group of users.
"""

"""Training on Apache Spark: models fitted on a cluster (or ``local[N]``), exported as movierec's
own artifacts so evaluation, the registry and the API use them unchanged.

* :mod:`movierec.distributed.spark_als`: Spark MLlib's implicit ALS, saved as an ``als`` model.
"""

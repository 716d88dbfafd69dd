"""The flow back: captured documents with ground truth become a dataset, a retrained candidate, an evaluation.

One module per step: `export` (index -> versioned dataset in the object store), `training` (dataset -> candidate in
the registry, fitted by the classifier's own code in the classifier's environment), `evaluation` (candidate vs
serving model, intervals, the promotion rule, JSON and HTML reports), `aliases` (register, promote, rollback).
Pure logic lives in `dataset`, `statistics` and `promotion`; I/O in `store` (S3), `registry` and `classifier`
(the subprocess into the classifier's environment). `python -m feedback.flowback --help` lists the commands.
"""

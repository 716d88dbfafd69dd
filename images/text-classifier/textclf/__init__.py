"""The text classifier's pipeline: clean text, spaCy lemmas, TF-IDF, logistic regression.

`cleaning`, `validation` and `split` use only the standard library, so the project's own tests import
them directly; `tokens`, `model` and `artifacts` need spaCy and scikit-learn (the model's virtualenv).
"""

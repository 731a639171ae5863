"""Sequence classification (many-to-one) and per-step tagging (many-to-many, synced): `Classifier`
(embedding -> RNN/LSTM/GRU -> pooling -> linear -> softmax), built-in tasks (`tasks`), labelled files
and their stratified split (`data`), metrics, and the training loop of ``rnnkit train-classifier``
(`train`).

    from rnnkit.classify import Classifier
    model, _ = Classifier.load("reviews")                  # a run of rnnkit train-classifier
    label, probabilities = model.classify(["a lovely film"])[0]
"""
from .data import Labels
from .model import Classifier

__all__ = ["Classifier", "Labels"]

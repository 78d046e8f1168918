"""Classification metrics of a retrained network on its test split (scikit-learn's)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support


def classification_report(y_true, y_pred, num_classes: int) -> dict:
    """Accuracy, per-class precision, recall, F1 and support, their macro means, and the
    confusion matrix (rows: true class, columns: predicted class), as plain JSON data.

    A class never predicted has precision 0 (and never present, recall 0).
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    labels = np.arange(num_classes)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    per_class = [
        {
            "class": int(c),
            "precision": float(p),
            "recall": float(r),
            "f1": float(f),
            "support": int(s),
        }
        for c, p, r, f, s in zip(labels, precision, recall, f1, support)
    ]
    return {
        "accuracy": float(np.mean(y_true == y_pred)),
        "macro": {
            "precision": float(np.mean(precision)),
            "recall": float(np.mean(recall)),
            "f1": float(np.mean(f1)),
        },
        "per_class": per_class,
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }
